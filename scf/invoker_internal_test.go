package scf

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// stepClock is a clock that moves only when told.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *stepClock) step(d time.Duration) { c.Sleep(context.Background(), d) }

// An instance freed within ReplyWindow after a call was sent as a new
// instance may have gone to that call: the Invoker counts one instance for
// the two, never two. Later than that, the freed instance is idle.
func TestInvokerLendsAFreedInstanceToAFreshStart(t *testing.T) {
	c, err := NewClient(WithCredentials(StaticCredentials("id", "key")))
	if err != nil {
		t.Fatal(err)
	}
	clock := &stepClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	iv, err := NewInvoker(c, WithInvokerClock(clock), WithDefaultConcurrencyLimit(10))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fs, err := iv.slots(ctx, &InvokerInput{FunctionName: "fn"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := iv.pool(ctx, fs, &InvokerInput{FunctionName: "fn"})
	if err != nil {
		t.Fatal(err)
	}
	send := func(want sendKind) *waiter {
		t.Helper()
		w := &waiter{p: p, sig: make(chan struct{}, 1)}
		if err := iv.admit(ctx, w); err != nil || w.kind != want {
			t.Fatalf("admitted as %d (%v), want %d", w.kind, err, want)
		}
		return w
	}
	warm := func(want int) {
		t.Helper()
		if n := iv.WarmInstances("fn"); n != want {
			t.Fatalf("%d instances counted, want %d", n, want)
		}
	}

	a := send(sendStart)
	clock.step(10 * time.Second)
	b := send(sendStart) // a still in flight: no known idle instance
	clock.step(time.Second)
	iv.settle(a, nil) // freed 1 s after b was sent: b may have it
	warm(1)
	if len(p.idle) != 0 || !b.lent {
		t.Fatalf("idle %d, lent %v", len(p.idle), b.lent)
	}
	iv.settle(b, nil)
	warm(1)

	// A start refused before placement (432) gives the lent instance back.
	c2 := send(sendWarm)
	d := send(sendStart)
	iv.settle(c2, nil)
	warm(1) // d in flight, holding what c2 freed
	iv.settle(d, &FunctionError{StatusCode: StatusResourceLimitReached})
	warm(1)
	if len(p.idle) != 1 {
		t.Fatalf("idle %d after the 432", len(p.idle))
	}

	// Beyond ReplyWindow the freed instance is idle, and the start counts
	// its own.
	e := send(sendWarm)
	f := send(sendStart)
	clock.step(ReplyWindow + time.Millisecond)
	iv.settle(e, nil)
	warm(2)
	iv.settle(f, errors.New("network down")) // fate unknown: counts none
	warm(1)
}
