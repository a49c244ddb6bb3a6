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
