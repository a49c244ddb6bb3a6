// Package clock is the model clock of the reference servers.
//
// A Clock runs in real time from the moment it is made, or stands still
// (manual); either way [Clock.Advance] jumps it forward and fires every
// timer that falls due, in order, before it returns. Timers are kept in one
// heap served by at most one goroutine, owned by the Clock and stopped by
// [Clock.Close].
//
// Inside a testing/synctest bubble "real time" is the bubble's fake time,
// so a running Clock needs no Advance there.
package clock

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/deadline"
)

// Clock is a model clock with timers. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	offset  atomic.Int64 // running: model = real + offset (ns); written under mu
	frozen  bool
	stopped time.Time // manual: the model time
	timers  timerHeap
	seq     uint64
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	started bool
	closed  bool
	// armed is the model time the goroutine sleeps to, never after the
	// earliest pending timer's due time: a new timer due no earlier needs
	// no wake-up, since the goroutine looks at the heap again at armed. A
	// new timer due earlier lowers it and wakes the goroutine; only the
	// goroutine, when it has slept to armed, raises it again.
	armed time.Time
}

// New returns a clock that runs in real time.
func New() *Clock { return newClock() }

// NewManual returns a clock that stands at start until advanced.
func NewManual(start time.Time) *Clock {
	c := newClock()
	c.frozen, c.stopped = true, start
	return c
}

func newClock() *Clock {
	return &Clock{kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// Now returns the model time.
func (c *Clock) Now() time.Time {
	if !c.frozen { // a running clock's time needs no lock: only its offset moves
		return c.nowLocked()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time {
	if c.frozen {
		return c.stopped
	}
	return time.Now().Add(time.Duration(c.offset.Load()))
}

// Manual reports whether the clock stands still between advances.
func (c *Clock) Manual() bool { return c.frozen }

// Advance moves the model time forward by d and runs, in due order and on
// the caller's goroutine, every timer that falls due. Negative d is ignored.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		return
	}
	c.mu.Lock()
	if c.frozen {
		c.stopped = c.stopped.Add(d)
	} else {
		c.offset.Add(int64(d))
	}
	c.mu.Unlock()
	c.fireDue()
	c.wake()
}

// Timer is a pending call made by AfterFunc.
type Timer struct {
	c     *Clock
	due   time.Time
	seq   uint64
	f     func()
	index int // in the heap; -1 once fired or stopped
}

// AfterFunc calls f on its own schedule once the model time reaches now+d.
// f runs on the clock's goroutine or inside Advance, never under a lock; it
// must not block.
func (c *Clock) AfterFunc(d time.Duration, f func()) *Timer {
	c.mu.Lock()
	c.seq++
	t := &Timer{c: c, due: c.nowLocked().Add(d), seq: c.seq, f: f, index: -1}
	c.timers.Push(t)
	start := !c.started && !c.frozen && !c.closed
	c.started = c.started || start
	// The goroutine (once started) must look again only if t is due
	// before the time it sleeps to; a manual clock has none.
	kick := c.started && t.due.Before(c.armed)
	if kick {
		c.armed = t.due
	}
	c.mu.Unlock()
	if start {
		go c.run()
	} else if kick {
		c.wake()
	}
	if d <= 0 {
		c.fireDue()
	}
	return t
}

// Stop cancels the timer; it reports whether the timer was still pending.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.c.timers.Remove(t)
}

// Sleep waits until the model time has moved d forward, or ctx ends.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	ch := make(chan struct{})
	t := c.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

// Close stops the clock's goroutine. Pending timers never fire.
func (c *Clock) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	started := c.started
	c.mu.Unlock()
	close(c.quit)
	if started {
		<-c.done
	}
}

func (c *Clock) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// fireDue runs the due timers one at a time, in due order, without the lock.
func (c *Clock) fireDue() {
	for {
		c.mu.Lock()
		if c.closed || len(c.timers) == 0 || c.timers[0].due.After(c.nowLocked()) {
			c.mu.Unlock()
			return
		}
		t := c.timers.Pop()
		c.mu.Unlock()
		t.f()
	}
}

// run sleeps in real time until the earliest timer is due.
func (c *Clock) run() {
	defer close(c.done)
	rt := time.NewTimer(time.Hour)
	defer rt.Stop()
	// slept: the goroutine has slept to armed (or just started), so it
	// arms again for the earliest timer. Woken by a kick, it keeps armed,
	// which a new timer may have lowered: timers that come and go faster
	// than the goroutine wakes (the time limits of short executions) do
	// not wake it each time.
	slept := true
	for {
		c.mu.Lock()
		now := c.nowLocked()
		if slept {
			c.armed = now.Add(time.Hour)
			if len(c.timers) > 0 {
				c.armed = c.timers[0].due
			}
		}
		wait := max(c.armed.Sub(now), 0)
		c.mu.Unlock()
		rt.Reset(wait)
		select {
		case <-c.quit:
			return
		case <-c.kick:
			slept = false
		case <-rt.C:
			c.fireDue()
			slept = true
		}
	}
}

// timerHeap orders timers by due time, then by when they were set.
type timerHeap = deadline.Heap[*Timer, byDue]

type byDue struct{}

func (byDue) Less(a, b *Timer) bool { return deadline.Before(a.due, a.seq, b.due, b.seq) }
func (byDue) Index(t *Timer) *int   { return &t.index }
