package retry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
)

func TestCeilingGrowsToMax(t *testing.T) {
	b := Exponential(time.Second, 30*time.Second)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := b.Ceiling(i + 1); got != w {
			t.Errorf("Ceiling(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := b.Ceiling(10_000); got != 30*time.Second {
		t.Errorf("Ceiling(10000) = %v, want the maximum", got)
	}
	if got := b.Ceiling(0); got != time.Second {
		t.Errorf("Ceiling(0) = %v, want the first wait", got)
	}
	if got := Exponential(time.Minute, time.Second).Ceiling(3); got != time.Minute {
		t.Errorf("longest below first: Ceiling = %v, want first", got)
	}
}

func TestJitterStaysInRange(t *testing.T) {
	b := Exponential(time.Second, 8*time.Second)
	for attempt := 1; attempt < 8; attempt++ {
		hi := b.Ceiling(attempt)
		var lowHalf, highHalf bool
		for range 200 {
			d := b.Delay(attempt)
			if d > hi || d < hi/2 {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, hi/2, hi)
			}
			lowHalf = lowHalf || d < hi*3/4
			highHalf = highHalf || d > hi*3/4
		}
		if !lowHalf || !highHalf {
			t.Errorf("Delay(%d) over 200 draws never fell on one side of 3/4 of %v: no jitter", attempt, hi)
		}
	}
}

func TestAfterHonoursHintWithinLongest(t *testing.T) {
	b := Exponential(time.Second, 10*time.Second)
	if got := b.After(1, 7*time.Second); got != 7*time.Second {
		t.Errorf("After(1, 7s) = %v, want the hint", got)
	}
	if got := b.After(1, time.Hour); got != 10*time.Second {
		t.Errorf("After(1, 1h) = %v, want the longest wait", got)
	}
	if got := b.After(1, 0); got < 500*time.Millisecond || got > time.Second {
		t.Errorf("After(1, 0) = %v, want the backoff's own wait", got)
	}
}

func TestClassify(t *testing.T) {
	api := func(code string, status int) error {
		return fmt.Errorf("wrapped: %w", &apierr.Error{Service: "car", Action: "A", Code: code, HTTPStatus: status})
	}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	cases := []struct {
		name string
		err  error
		want Class
	}{
		{"throttled envelope", api("RequestLimitExceeded.UinLimitExceeded", 200), Throttled},
		{"HTTP 429", api(apierr.CodeHTTPStatus, 429), Throttled},
		{"HTTP 503", api(apierr.CodeHTTPStatus, 503), Transient},
		{"HTTP 500 with InternalError", api("InternalError", 500), Transient},
		{"HTTP 501", api(apierr.CodeHTTPStatus, 501), Answered},
		{"HTTP 404", api(apierr.CodeHTTPStatus, 404), Answered},
		{"InternalError in a 200 envelope", api("InternalError.System", 200), Internal},
		{"unparseable reply", api(apierr.CodeParseJSON, 200), Transient},
		{"auth", api("AuthFailure.SignatureExpire", 200), Refused},
		{"unauthorized", api("UnauthorizedOperation", 200), Refused},
		{"bad parameter", api("InvalidParameterValue.UserId", 200), Refused},
		{"unknown action", api(apierr.CodeInvalidAction, 200), Refused},
		{"unsupported region", api("UnsupportedRegion", 200), Refused},
		{"business answer", api("ResourceNotFound.NoIdle", 200), Answered},
		{"validation", &apierr.ValidationError{Field: "UserId", Rule: "is required"}, Refused},
		{"failed dial", fmt.Errorf("post: %w", dial), Unsent},
		{"connection reset", errors.New("connection reset by peer"), Transient},
		{"timeout", context.DeadlineExceeded, Transient},
	}
	for _, tc := range cases {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify = %v, want %v", tc.name, got, tc.want)
		}
	}
	for c, want := range map[Class][2]bool{ // {unsafe call, idempotent call}
		Answered: {false, false}, Refused: {false, false}, Throttled: {true, true},
		Unsent: {true, true}, Transient: {false, true}, Internal: {false, false},
	} {
		if got := [2]bool{c.RetryAttempt(false), c.RetryAttempt(true)}; got != want {
			t.Errorf("%v.RetryAttempt(unsafe, idempotent) = %v, want %v", c, got, want)
		}
	}
	for status, want := range map[int]Class{101: Answered, 200: Answered, 301: Answered, 400: Answered, 403: Answered,
		404: Answered, 408: Transient, 429: Throttled, 500: Transient, 501: Answered, 502: Transient, 503: Transient, 504: Transient} {
		if got := ClassifyStatus(status); got != want {
			t.Errorf("ClassifyStatus(%d) = %v, want %v", status, got, want)
		}
	}
	for c, want := range map[Class]bool{Answered: false, Refused: false, Throttled: false, Unsent: true, Transient: true, Internal: true} {
		if c.Fault() != want {
			t.Errorf("%v.Fault() = %v, want %v", c, c.Fault(), want)
		}
	}
	if !Transient.MayHaveActed() || !Internal.MayHaveActed() || Throttled.MayHaveActed() || Unsent.MayHaveActed() {
		t.Error("MayHaveActed: want Transient and Internal only")
	}
}

func TestIsTimeout(t *testing.T) {
	if !IsTimeout(fmt.Errorf("x: %w", context.DeadlineExceeded)) || !IsTimeout(&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}) {
		t.Error("a deadline is a timeout")
	}
	if IsTimeout(errors.New("connection reset")) || IsTimeout(context.Canceled) {
		t.Error("a reset or a cancel is not a timeout")
	}
}

func TestBudgetSpendsAndRefunds(t *testing.T) {
	b := NewBudget(20, 5, 10, 1)
	if cost, ok := b.Spend(true); !ok || cost != 10 {
		t.Fatalf("timeout retry: cost %d, ok %v", cost, ok)
	}
	if cost, ok := b.Spend(false); !ok || cost != 5 {
		t.Fatalf("retry: cost %d, ok %v", cost, ok)
	}
	if cost, ok := b.Spend(true); ok || cost != 0 || b.Tokens() != 5 {
		t.Fatalf("timeout retry with 5 tokens left: cost %d, ok %v, %d tokens; want refused, nothing taken", cost, ok, b.Tokens())
	}
	b.Succeeded(15) // a call whose retries cost 15 succeeded
	if b.Tokens() != 20 {
		t.Fatalf("%d tokens after the refund, want 20", b.Tokens())
	}
	b.Succeeded(0)
	if b.Tokens() != 20 {
		t.Fatalf("%d tokens, want the capacity (20) at most", b.Tokens())
	}
	for range 4 {
		b.Spend(false)
	}
	if _, ok := b.Spend(false); ok {
		t.Fatal("an empty bucket paid for a retry")
	}
	for range 5 {
		b.Succeeded(0) // first-attempt successes refund 1 each
	}
	if _, ok := b.Spend(false); !ok {
		t.Fatal("five successes did not pay for one retry")
	}
	var nb *Budget
	if _, ok := nb.Spend(true); !ok {
		t.Fatal("no budget refused a retry")
	}
}

func TestBudgetConcurrent(t *testing.T) {
	b := NewBudget(DefaultBudgetCapacity, DefaultRetryCost, DefaultTimeoutCost, DefaultSuccessRefund)
	var mu sync.Mutex
	granted := 0
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 10 {
				if _, ok := b.Spend(false); ok {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if granted != DefaultBudgetCapacity/DefaultRetryCost || b.Tokens() != 0 {
		t.Fatalf("%d retries granted, %d tokens left; want %d and 0", granted, b.Tokens(), DefaultBudgetCapacity/DefaultRetryCost)
	}
}
