package apiserver

import (
	"context"
	"sync"
	"time"
)

// budget is a weighted semaphore over bytes of request bodies, granted in
// arrival order: a large body cannot be passed over for ever by smaller
// ones.
type budget struct {
	mu      sync.Mutex
	size    int64
	used    int64
	waiters []*budgetWaiter
	free    [][]byte // buffers of bodies answered, for the next ones
	freeCap int64    // their total capacity, at most size
}

// buffer returns a buffer of n bytes for a body that holds n bytes of the
// budget: a free one if one is large enough, else a new one. Reusing them
// keeps the heap near the budget (rather than twice it, as garbage would)
// and spares the zeroing of 10 MB allocations.
func (b *budget) buffer(n int64) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, buf := range b.free {
		if int64(cap(buf)) >= n {
			b.free = append(b.free[:i], b.free[i+1:]...)
			b.freeCap -= int64(cap(buf))
			return buf[:n]
		}
	}
	return make([]byte, n)
}

// recycle keeps a body's buffer for reuse, as long as the free ones stay
// within the budget's size; the largest are kept.
func (b *budget) recycle(buf []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := int64(cap(buf))
	for b.freeCap+c > b.size && len(b.free) > 0 {
		smallest := 0
		for i, f := range b.free {
			if cap(f) < cap(b.free[smallest]) {
				smallest = i
			}
		}
		if cap(b.free[smallest]) >= cap(buf) {
			return
		}
		b.freeCap -= int64(cap(b.free[smallest]))
		b.free = append(b.free[:smallest], b.free[smallest+1:]...)
	}
	if b.freeCap+c <= b.size {
		b.free = append(b.free, buf)
		b.freeCap += c
	}
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

// acquire takes n bytes, waiting in line for at most wait, or until ctx
// ends or closing is closed. It reports whether it got them.
func (b *budget) acquire(ctx context.Context, closing <-chan struct{}, n int64, wait time.Duration) bool {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return true
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.ready:
		return true
	case <-ctx.Done():
	case <-closing:
	case <-timeout:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.used -= n
	default:
		for i, o := range b.waiters {
			if o == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
	}
	b.grantLocked() // the head may have changed, or bytes came back
	return false
}

// release gives n bytes back and wakes whoever now fits.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.grantLocked()
	b.mu.Unlock()
}

func (b *budget) grantLocked() {
	for len(b.waiters) > 0 && b.used+b.waiters[0].n <= b.size {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.used += w.n
		close(w.ready)
	}
}
