package scf

import (
	"context"
	"time"
)

// Ptr returns a pointer to v, for optional fields where zero is meaningful.
func Ptr[T any](v T) *T { return &v }

// Clock is the time source of the waits this package makes itself: the
// Invoker's retry waits and the provisioned-concurrency waiter. The default
// is the host's clock. A reference server's model clock (scftest's
// Server.Clock) satisfies it, so a test or a time-scaled demo can drive
// those waits with the server's time.
type Clock interface {
	Now() time.Time
	// Sleep waits until the clock has moved d forward or ctx ends, and
	// then returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
}

// hostClock is the default Clock.
type hostClock struct{}

func (hostClock) Now() time.Time { return time.Now() }

func (hostClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
