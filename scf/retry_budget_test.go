package scf_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// TestRetryBudgetBoundsAnOutage: while every GetAccount answers HTTP 503,
// 150 concurrent calls of one client make 100 retries in all (the default
// budget: 500 tokens at 5 a retry), not the 300 their attempts allow; with
// the budget disabled they make all 300. Each call fails with its last
// error.
func TestRetryBudgetBoundsAnOutage(t *testing.T) {
	const n, attempts, budgetRetries = 150, 3, 500 / 5 // the documented defaults
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t, scftest.WithoutRateLimits())
		outage := func(c *scf.Client, faults int) int {
			before := countCalls(srv, "GetAccount")
			if err := srv.InjectFault("GetAccount", scftest.Fault{Code: "InternalError", Message: "outage", HTTPStatus: 503, Times: faults}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					_, err := c.GetAccount(t.Context(), nil)
					var apiErr *scf.APIError
					if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 503 || apiErr.Attempts < 1 || apiErr.Attempts > attempts {
						t.Errorf("a call in the outage: %v, want its last HTTP 503 after 1 to %d attempts", err, attempts)
					}
				})
			}
			wg.Wait()
			return countCalls(srv, "GetAccount") - before
		}
		if got := outage(c, n+budgetRetries); got != n+budgetRetries {
			t.Errorf("%d calls in an outage made %d attempts, want %d (%d retries: the default budget)", n, got, n+budgetRetries, budgetRetries)
		}
		unbounded := srv.Client(scf.WithRetryBudget(scf.RetryBudget{Disabled: true}))
		defer unbounded.CloseIdleConnections()
		if got := outage(unbounded, n*attempts); got != n*attempts {
			t.Errorf("with the budget disabled, %d calls made %d attempts, want %d", n, got, n*attempts)
		}
		// The outage is over: calls succeed at once.
		if _, err := c.GetAccount(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
	})
}

// TestInvokerRetriesDrawOnTheBudget: the Invoker's own retries — of a 432
// (the quota is full) and of an idempotent call whose execution failed
// (here HTTP 503 on every attempt) — take from the client's retry budget
// as the client's retries do: 150 concurrent calls make 100 retries in all
// (500 tokens at 5 a retry), not the 150 × (attempts − 1) the Invoker's
// policy allows, and each fails with its last error. With the budget
// disabled they make every attempt.
func TestInvokerRetriesDrawOnTheBudget(t *testing.T) {
	const n, budgetRetries = 150, 500 / 5 // the documented defaults
	for _, tc := range []struct {
		name     string
		fault    scftest.Fault
		attempts int // the Invoker's policy: MaxAttempts for 432, ExecutionAttempts for a failed execution
		status   int // the last error's function status
	}{
		{"432", scftest.Fault{Code: scf.CodeQuota, Message: "the quota is full"}, 10, scf.StatusResourceLimitReached},
		{"HTTP 503", scftest.Fault{Code: "InternalError", Message: "outage", HTTPStatus: 503}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, c := startServer(t, scftest.WithoutRateLimits())
				addTenSecond(t, srv, "work")
				outage := func(c *scf.Client, faults int) int {
					before := countCalls(srv, "InvokeFunction")
					f := tc.fault
					f.Times = faults
					if err := srv.InjectFault("InvokeFunction", f); err != nil {
						t.Fatal(err)
					}
					iv, err := scf.NewInvoker(c, scf.WithDefaultConcurrencyLimit(n))
					if err != nil {
						t.Fatal(err)
					}
					var wg sync.WaitGroup
					for range n {
						wg.Go(func() {
							_, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "work", Idempotent: true})
							var apiErr *scf.APIError
							if !errors.As(err, &apiErr) || scf.FunctionStatus(err) != tc.status {
								t.Errorf("a call in the outage: %v, want its last error (status %d)", err, tc.status)
							}
						})
					}
					wg.Wait()
					return countCalls(srv, "InvokeFunction") - before
				}
				if got := outage(c, n+budgetRetries); got != n+budgetRetries {
					t.Errorf("%d calls made %d attempts, want %d (%d retries: the default budget)", n, got, n+budgetRetries, budgetRetries)
				}
				unbounded := srv.Client(scf.WithRetryBudget(scf.RetryBudget{Disabled: true}))
				defer unbounded.CloseIdleConnections()
				if got := outage(unbounded, n*tc.attempts); got != n*tc.attempts {
					t.Errorf("with the budget disabled, %d calls made %d attempts, want %d", n, got, n*tc.attempts)
				}
				// The outage is over: a call succeeds at once.
				iv, _ := scf.NewInvoker(c, scf.WithDefaultConcurrencyLimit(n))
				if _, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "work", Idempotent: true}); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
