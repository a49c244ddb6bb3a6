package retry

import "sync"

// Defaults of a client's retry budget (those of aws-sdk-go-v2's standard
// retryer).
const (
	DefaultBudgetCapacity = 500 // tokens in a full bucket; it starts full
	DefaultRetryCost      = 5   // a retry
	DefaultTimeoutCost    = 10  // a retry after a timeout
	DefaultSuccessRefund  = 1   // a call that succeeds at its first attempt
)

// Budget is a token bucket that the retries of all of one client's calls
// draw on. It is safe for concurrent use. A nil *Budget is no budget:
// every retry is allowed.
type Budget struct {
	capacity, retryCost, timeoutCost, refund int

	mu     sync.Mutex
	tokens int
}

// NewBudget returns a full bucket of capacity tokens. Costs and the refund
// below 0 count as 0.
func NewBudget(capacity, retryCost, timeoutCost, refund int) *Budget {
	return &Budget{
		capacity: max(capacity, 0), retryCost: max(retryCost, 0),
		timeoutCost: max(timeoutCost, 0), refund: max(refund, 0),
		tokens: max(capacity, 0),
	}
}

// Spend takes the cost of one retry (the timeout cost if the failed
// attempt timed out) and returns it. If the bucket holds less, it takes
// nothing and reports false: the call must not retry.
func (b *Budget) Spend(timeout bool) (cost int, ok bool) {
	if b == nil {
		return 0, true
	}
	cost = b.retryCost
	if timeout {
		cost = b.timeoutCost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < cost {
		return 0, false
	}
	b.tokens -= cost
	return cost, true
}

// Succeeded settles a call that succeeded: spent is what its retries took
// (the sum of Spend's costs), given back in full; a call with no retries
// gives the success refund. The bucket never holds more than its capacity.
func (b *Budget) Succeeded(spent int) {
	if b == nil {
		return
	}
	if spent <= 0 {
		spent = b.refund
	}
	b.mu.Lock()
	b.tokens = min(b.tokens+spent, b.capacity)
	b.mu.Unlock()
}

// Tokens returns the tokens in the bucket now.
func (b *Budget) Tokens() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens
}
