package car_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// defaultAttempts is the documented default of RetryPolicy.MaxAttempts.
const defaultAttempts = 3

// countCalls counts the API calls of action the server saw, faults
// included.
func countCalls(srv *cartest.Server, action string) int {
	n := 0
	for _, e := range calls(srv) {
		if e.Action == action {
			n++
		}
	}
	return n
}

// callsInOutage makes n concurrent DescribeConcurrentCount calls while every
// attempt answers HTTP 503, and returns the attempts the server saw.
func callsInOutage(t *testing.T, srv *cartest.Server, c *car.Client, n, faults int) int {
	t.Helper()
	before := countCalls(srv, "DescribeConcurrentCount")
	if err := srv.InjectFault("DescribeConcurrentCount", cartest.Fault{Code: "ServiceUnavailable", Message: "outage", HTTPStatus: 503, Times: faults}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.DescribeConcurrentCount(t.Context(), nil)
			var apiErr *car.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 503 || apiErr.Attempts < 1 || apiErr.Attempts > defaultAttempts {
				t.Errorf("a call in the outage: %v, want its last HTTP 503 after 1 to 3 attempts", err)
			}
		})
	}
	wg.Wait()
	return countCalls(srv, "DescribeConcurrentCount") - before
}

// TestRetryBudgetBoundsAnOutage: during an outage (HTTP 503 on every
// attempt), 200 concurrent calls of one client make 100 retries in all —
// the default budget, 500 tokens at 5 a retry — instead of the 400 their
// attempts allow; a client with the budget disabled makes all 400.
func TestRetryBudgetBoundsAnOutage(t *testing.T) {
	const n = 200
	const budgetRetries = 500 / 5 // the documented default: 500 tokens, 5 a retry
	synctest.Test(t, func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithListener(memnet.Listen("car")), cartest.WithoutRateLimits())
		if got := callsInOutage(t, srv, srv.Client(), n, n+budgetRetries); got != n+budgetRetries {
			t.Errorf("%d calls in an outage made %d attempts, want %d: %d retries, the default budget", n, got, n+budgetRetries, budgetRetries)
		}
		unbounded := srv.Client(car.WithRetryBudget(car.RetryBudget{Disabled: true}))
		if got := callsInOutage(t, srv, unbounded, n, n*defaultAttempts); got != n*defaultAttempts {
			t.Errorf("with the budget disabled, %d calls made %d attempts, want %d", n, got, n*defaultAttempts)
		}
		srv.Close()
	})
}

// TestRetryBudgetRefills: an empty budget retries nothing; calls that
// succeed at once refill it by one token each, and a call that succeeds
// after retries gives back what they took.
func TestRetryBudgetRefills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithListener(memnet.Listen("car")), cartest.WithoutRateLimits())
		c := srv.Client(car.WithRetryBudget(car.RetryBudget{Capacity: 10}))
		ctx := t.Context()
		many := car.WithCallRetry(car.RetryPolicy{MaxAttempts: 10})
		fail := func(times int) {
			t.Helper()
			if err := srv.InjectFault("DescribeConcurrentCount", cartest.Fault{Code: "ServiceUnavailable", HTTPStatus: 503, Times: times}); err != nil {
				t.Fatal(err)
			}
		}
		attempts := func(err error) int {
			var apiErr *car.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			return apiErr.Attempts
		}

		// Two retries drain the 10 tokens; the third failure is final,
		// though a fourth attempt would have succeeded.
		fail(3)
		if _, err := c.DescribeConcurrentCount(ctx, nil, many); attempts(err) != 3 {
			t.Fatalf("with 10 tokens: %d attempts, want 3 (two retries of 5)", attempts(err))
		}
		fail(1)
		if _, err := c.DescribeConcurrentCount(ctx, nil, many); attempts(err) != 1 {
			t.Fatalf("with an empty budget: %d attempts, want 1", attempts(err))
		}

		// Five calls that succeed at once pay for one retry.
		for range 5 {
			if _, err := c.DescribeConcurrentCount(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		fail(2)
		if _, err := c.DescribeConcurrentCount(ctx, nil, many); attempts(err) != 2 {
			t.Fatalf("after 5 successes: %d attempts, want 2 (one retry)", attempts(err))
		}
		for range 5 {
			c.DescribeConcurrentCount(ctx, nil)
		}

		// A success after a retry gives its 5 tokens back: the next call
		// can retry too.
		for i := range 3 {
			fail(1)
			if _, err := c.DescribeConcurrentCount(ctx, nil, many); err != nil {
				t.Fatalf("call %d with one failure and a refunded budget: %v", i+1, err)
			}
		}
		if got := countCalls(srv, "DescribeConcurrentCount"); got != 3+1+5+2+5+6 {
			t.Errorf("the server saw %d calls, want %d", got, 3+1+5+2+5+6)
		}
		srv.Close()
	})
}
