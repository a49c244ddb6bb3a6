// Package retry is the SDK's model of waiting between attempts: an
// exponential backoff with jitter whose delay for attempt n is a pure
// function of n (and a random draw), so that any loop — the API transport,
// the session manager's release queue, a reconnecting client — can compute
// it without keeping a stateful BackOff between attempts, and tests can
// assert it exactly by removing the jitter.
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff describes the waits before retries: attempt 1 waits about
// Initial, each later attempt Multiplier times more, never more than Max.
// Jitter spreads each wait down to (1-Jitter) of it, so that clients that
// failed together do not come back together ("equal jitter" for 0.5, "full
// jitter" for 1).
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64 // 0 means 2
	Jitter     float64 // 0 to 1; 0 means none
}

// Delay returns the wait before retry number attempt (1 for the first
// retry). Attempts below 1 count as 1.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Ceiling(attempt)
	if b.Jitter > 0 && d > 0 {
		j := min(b.Jitter, 1)
		d = time.Duration(float64(d) * (1 - j*rand.Float64()))
	}
	return d
}

// Ceiling is Delay without jitter: the longest wait before retry number
// attempt.
func (b Backoff) Ceiling(attempt int) time.Duration {
	mult := b.Multiplier
	if mult <= 1 {
		mult = 2
	}
	d := float64(b.Initial)
	for i := 1; i < attempt && d < float64(b.Max); i++ {
		d *= mult
	}
	if b.Max > 0 && d > float64(b.Max) {
		d = float64(b.Max)
	}
	return time.Duration(d)
}
