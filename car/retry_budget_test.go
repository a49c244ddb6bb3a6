package car_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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

// TestReleaseQueueDrawsOnTheBudget: during a 30-minute outage of
// DestroySession (HTTP 503, InternalError, reset connections), the retries
// of 50 pending releases take from the client's retry budget: the server
// sees at most the 50 first attempts, the budget's 100 retries (500 tokens
// at 5; the retries inside each DestroySession call draw on it too) and
// then one probe per DefaultReleaseRetryMax, not three attempts per
// release every 30 s. No release is dropped: the queue goes on probing,
// and once CAR is back every user is released, once.
func TestReleaseQueueDrawsOnTheBudget(t *testing.T) {
	const n, budgetRetries = 50, 500 / 5 // the documented defaults
	const outageFor = 30 * time.Minute
	synctest.Test(t, func(t *testing.T) {
		var o *outage
		env := newManagerEnv(t, envConfig{packSize: n, noRateLimits: true,
			wrap: func(rt http.RoundTripper) http.RoundTripper { o = newOutage(rt); return o }})
		user := func(i int) string { return fmt.Sprintf("u%02d", i) }
		for i := range n {
			env.connect(env.start(user(i)))
		}
		o.set("DestroySession", true)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				var pending *car.ReleasePendingError
				if err := env.mgr.Stop(ctx, user(i)); !errors.As(err, &pending) {
					t.Errorf("Stop %s in the outage: %v, want a *ReleasePendingError", user(i), err)
				}
			})
		}
		wg.Wait()
		time.Sleep(outageFor)
		probes := int(outageFor / car.DefaultReleaseRetryMax)
		got := o.count("DestroySession")
		if got > n+budgetRetries+probes+1 {
			t.Errorf("%d releases in a %v outage made %d DestroySession attempts, want at most %d: the first attempts, %d retries (the default budget) and one probe per %v",
				n, outageFor, got, n+budgetRetries+probes+1, budgetRetries, car.DefaultReleaseRetryMax)
		}
		if got < n+probes/2 {
			t.Errorf("%d DestroySession attempts in %v: the release queue stopped probing", got, outageFor)
		}
		if r := env.released(); len(r) != 0 {
			t.Fatalf("released during the outage: %+v", r)
		}
		if s := env.mgr.Snapshot(); s.PendingReleases != n {
			t.Fatalf("%d releases pending in the outage, want %d", s.PendingReleases, n)
		}

		o.set("DestroySession", false)
		time.Sleep(car.DefaultReleaseRetryMax + time.Minute)
		synctest.Wait()
		rel := env.released()
		if len(rel) != n {
			t.Fatalf("%d of %d released after the outage", len(rel), n)
		}
		for _, r := range rel {
			if !r.Destroyed || r.DestroyErr != nil {
				t.Errorf("release %+v, want done", r)
			}
		}
		if d := env.destroyCalls(); d != n {
			t.Errorf("CAR destroyed %d sessions, want %d", d, n)
		}
		t.Logf("%d DestroySession attempts in the outage", got)
	})
}

// TestQueueHeadDrawsOnTheBudget: the queue head's retries after transient
// failures (ApplyConcurrent failing for 30 minutes) take from the client's
// retry budget; once it is empty the head keeps its place and tries once
// per DefaultReleaseRetryMax and backoff, so the server sees at most the
// budget's 100 retries and about two calls a minute, where the head's
// backoff alone (at most 10 s) would make six. The head is admitted once
// CAR is back.
func TestQueueHeadDrawsOnTheBudget(t *testing.T) {
	const budgetRetries = 500 / 5
	const outageFor = 30 * time.Minute
	synctest.Test(t, func(t *testing.T) {
		var o *outage
		env := newManagerEnv(t, envConfig{packSize: 1, noRateLimits: true,
			wrap: func(rt http.RoundTripper) http.RoundTripper { o = newOutage(rt); return o }})
		env.connect(env.start("a"))
		bl := env.start("b")
		env.connect(bl)
		if bl.QueuePosition != 1 {
			t.Fatalf("b at position %d, want 1", bl.QueuePosition)
		}
		o.set("ApplyConcurrent", true)
		before := o.count("ApplyConcurrent")
		if err := env.mgr.Stop(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(outageFor)
		got := o.count("ApplyConcurrent") - before
		// One call per wait (DefaultReleaseRetryMax) and backoff (at least
		// 5 s at its longest).
		probes := int(outageFor / (car.DefaultReleaseRetryMax + 5*time.Second))
		if got > 1+budgetRetries+probes+1 {
			t.Errorf("the head made %d ApplyConcurrent attempts in a %v outage, want at most %d", got, outageFor, 1+budgetRetries+probes+1)
		}
		if got < probes/2 {
			t.Errorf("the head made %d attempts in %v: it stopped trying", got, outageFor)
		}
		if s := env.mgr.Snapshot(); s.Waiting != 1 || s.Users[0].UserId != "b" || s.Users[0].StartError == "" {
			t.Fatalf("during the outage: %+v", s)
		}
		o.set("ApplyConcurrent", false)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := bl.Wait(ctx); err != nil {
			t.Fatalf("b after the outage: %v", err)
		}
		t.Logf("%d ApplyConcurrent attempts in the outage", got)
	})
}
