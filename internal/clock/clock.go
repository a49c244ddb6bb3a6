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
	"time"

	"github.com/tcconcurrency/sdk-go/internal/deadline"
)

// Clock is a model clock with timers. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	offset  time.Duration // running: model = real + offset
	frozen  bool
	stopped time.Time // manual: the model time
	timers  timerHeap
	seq     uint64
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	started bool
	closed  bool
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
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time {
	if c.frozen {
		return c.stopped
	}
	return time.Now().Add(c.offset)
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
		c.offset += d
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
	c.mu.Unlock()
	if start {
		go c.run()
	}
	c.wake()
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
	for {
		c.mu.Lock()
		wait := time.Hour
		if len(c.timers) > 0 {
			wait = max(c.timers[0].due.Sub(c.nowLocked()), 0)
		}
		c.mu.Unlock()
		rt.Reset(wait)
		select {
		case <-c.quit:
			return
		case <-c.kick:
		case <-rt.C:
			c.fireDue()
		}
	}
}

// timerHeap orders timers by due time, then by when they were set.
type timerHeap = deadline.Heap[*Timer, byDue]

type byDue struct{}

func (byDue) Less(a, b *Timer) bool { return deadline.Before(a.due, a.seq, b.due, b.seq) }
func (byDue) Index(t *Timer) *int   { return &t.index }
