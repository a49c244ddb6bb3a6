// Package retry is the SDK's one retry model. Every loop that tries
// something again — the API transport's attempts, the session manager's
// DestroySession and release queue, its queue head and Start, the SCF
// Invoker and provisioned-concurrency waiter, and the heartbeat client's
// reconnect — takes its three decisions from here:
//
//   - What is worth retrying: [Classify] sorts a failure into one [Class].
//     Throttled answers (RequestLimitExceeded*, HTTP 429) and failed dials
//     are retried for every call, since the API did not act on them.
//     Failures after which the API may have acted (HTTP 5xx but 501, 408,
//     InternalError, a connection lost after sending, an unreadable reply,
//     a timeout) are retried only where repeating the call is safe.
//     Refused requests (bad input, credentials, an unknown action, version
//     or region) are never retried. Any other API error is an answer: a
//     loop retries it only if its own domain says so (CAR's
//     ResourceNotFound.NoIdle keeps a queued user waiting, for example).
//     [ClassifyStatus] is the same rule for a bare HTTP status, which the
//     heartbeat client applies to a refused WebSocket handshake.
//   - How long to wait before retry n: [Exponential] is the only backoff.
//     The ceiling doubles from its first wait up to its longest, and each
//     wait is drawn between half the ceiling and the ceiling ("equal
//     jitter"), so that clients that failed together do not come back
//     together. A server's Retry-After raises a wait, never beyond the
//     longest ([Backoff.After]). The delay is a function of n alone: loops
//     keep no backoff state between attempts, and each outage starts again
//     from retry 1.
//   - Whether the client can afford a retry at all: a [Budget], one per
//     API client, is a token bucket shared by all of the client's calls,
//     as aws-sdk-go-v2's retry quota is. A retry costs [DefaultRetryCost]
//     tokens, a retry after a timeout [DefaultTimeoutCost]; a call that
//     succeeds at once refunds [DefaultSuccessRefund], one that succeeds
//     after retries refunds what its retries cost. The bucket holds
//     [DefaultBudgetCapacity] tokens and starts full. When it is empty, a
//     failed attempt is not retried: the call fails with its last error. So
//     during an outage the clients of one process add at most
//     capacity/cost retries to the load they put on the API (100 with the
//     defaults), instead of multiplying every call by its attempts; once
//     calls succeed again, the budget refills.
//
// Waits end when their context ends, and a loop does not start a wait that
// would outlast its context's deadline. The budget bounds the retries
// inside API calls (the transport's attempts, which include
// DestroySession's) and the retries of the loops above them, which charge
// the same client's bucket: the SCF Invoker's retries of a 432 and of an
// idempotent call whose execution failed (when the bucket is empty, the
// call fails with its last error), and the session manager's release
// queue and queue head. Those two must not give up: when the bucket is
// empty they wait, and one of them at a time tries uncharged, as a probe,
// once per the manager's longest release backoff (30 s by default); a
// success refills the bucket. The Invoker's resends after a 429 are not
// charged: they go only where its admission control sends them (an
// instance one of its own calls freed, or one probe of the start budget
// at a time, with growing pauses), so a 429 cannot multiply the load, and
// a burst whose 429s it absorbs must not empty the bucket the other calls
// need.
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before each retry. Make one with [Exponential].
type Backoff struct {
	first, longest time.Duration
}

// Exponential is the SDK's backoff: the ceiling of the wait before retry n
// is first·2ⁿ⁻¹, at most longest, and the wait is drawn between half the
// ceiling and the ceiling. A longest below first is raised to first.
func Exponential(first, longest time.Duration) Backoff {
	return Backoff{first: first, longest: max(longest, first)}
}

// Delay returns the wait before retry number attempt (1 for the first
// retry). Attempts below 1 count as 1.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Ceiling(attempt)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Ceiling is Delay without jitter: the longest wait before retry number
// attempt.
func (b Backoff) Ceiling(attempt int) time.Duration {
	d := b.first
	for i := 1; i < attempt && d < b.longest; i++ {
		d *= 2
	}
	return min(d, b.longest)
}

// After is Delay raised to a server's hint (Retry-After), and capped at
// the backoff's longest wait either way.
func (b Backoff) After(attempt int, hint time.Duration) time.Duration {
	return min(max(b.Delay(attempt), hint), b.longest)
}

// Longest is the cap on every wait.
func (b Backoff) Longest() time.Duration { return b.longest }
