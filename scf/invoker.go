package scf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// InvokeAPI is the action an Invoker uses for synchronous calls.
type InvokeAPI string

// The actions that run a function synchronously.
const (
	// APIInvokeFunction is the default: 10,000 calls per second per
	// account, so a burst of invocations meets the function's concurrency
	// limits (429, 432), which the Invoker absorbs, before the API's rate
	// limit. Its Qualifier defaults to the $DEFAULT alias.
	APIInvokeFunction InvokeAPI = "InvokeFunction"
	// APIInvoke allows 100 calls per second per account; beyond that every
	// call is throttled with RequestLimitExceeded. Its Qualifier defaults
	// to $LATEST. Asynchronous calls always use it (InvokeFunction is
	// synchronous only).
	APIInvoke InvokeAPI = "Invoke"
)

// InvokerRetry is how an Invoker retries overrun errors and, for calls
// marked idempotent, failed executions. Its retries of a 432 and of a
// failed execution take their cost from the client's retry budget
// ([WithRetryBudget]), as the client's own retries do: when the budget is
// empty the call fails with its last error. A call turned away with 429 is
// not charged: it is sent again only where the Invoker's admission sends
// it (an instance one of its calls freed, or a probe of the start budget).
type InvokerRetry struct {
	// MaxAttempts bounds the attempts of one call, the first included, for
	// overrun errors (429, 432). 0 means 10; a negative value means until
	// the context ends.
	MaxAttempts int
	// ExecutionAttempts bounds the attempts of an idempotent call that
	// fails in execution (433, 434, 439, user code…), with a system error
	// or on the network after the request was sent. 0 means 3 (two
	// retries, SCF's own policy for asynchronous events).
	ExecutionAttempts int
	// MinWait and MaxWait bound the exponential backoff after a 432,
	// between idempotent retries, and between the probes of the start
	// budget after a 429 (default 1 s and 30 s): pause n is MinWait ×
	// 2ⁿ⁻¹, at most MaxWait (and for a probe the budget's window), made up
	// to 50% shorter at random.
	MinWait, MaxWait time.Duration
}

// backoff is the policy's pauses, in the SDK's one retry model.
func (p InvokerRetry) backoff() retry.Backoff {
	return retry.Exponential(p.MinWait, p.MaxWait)
}

func (p InvokerRetry) withDefaults() InvokerRetry {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 10
	}
	if p.ExecutionAttempts == 0 {
		p.ExecutionAttempts = 3
	}
	if p.MinWait == 0 {
		p.MinWait = time.Second
	}
	if p.MaxWait == 0 {
		p.MaxWait = 30 * time.Second
	}
	if p.MinWait > p.MaxWait {
		p.MinWait = p.MaxWait
	}
	return p
}

// Defaults of the Invoker's start budget and warm-instance estimate.
const (
	// DefaultWarmRetention is how long the Invoker counts on an idle
	// instance it knows of staying warm. SCF keeps finished instances
	// for a period it chooses and does not document; a shorter estimate
	// only spends start budget that was not needed, a longer one risks
	// 429s (which the Invoker then absorbs).
	DefaultWarmRetention = time.Minute
	// ScaleOutWindow is the period of the start budget: a start counts
	// against the budget for this long after it was sent, a minute plus
	// a second's margin for the network and the server's clock.
	ScaleOutWindow = time.Minute + time.Second
	// ReplyWindow is the time the Invoker allows between SCF acting on a
	// request and the Invoker hearing of it. A probe of the start budget
	// after a 429 with no 429 back within it got an instance (SCF turns a
	// call away at once, before it runs), and the budget opens again. An
	// instance freed within it after a call was sent as a new instance may
	// have gone to that call (SCF prefers a warm instance to a new one), so
	// the Invoker counts one instance for the two.
	ReplyWindow = 2 * time.Second
)

// InvokerOption configures an Invoker (see NewInvoker).
type InvokerOption func(*invokerConfig) error

// invokerConfig is what an Invoker is built from.
type invokerConfig struct {
	api          InvokeAPI
	retry        InvokerRetry
	clock        Clock
	logger       *slog.Logger
	explicit     map[string]int
	defaultLimit int
	retention    time.Duration
	rate         int // the start budget's
}

// WithConcurrencyLimit sets the most invocations of one function the
// Invoker keeps in flight, instead of discovering it. function is "name"
// (namespace "default") or "namespace/name". n must be at least 1.
func WithConcurrencyLimit(function string, n int) InvokerOption {
	return func(c *invokerConfig) error {
		if n < 1 {
			return fmt.Errorf("concurrency limit of %s: %d must be at least 1", function, n)
		}
		key, err := functionKey(function)
		if err != nil {
			return err
		}
		c.explicit[key] = n
		return nil
	}
}

// WithDefaultConcurrencyLimit sets the in-flight limit of every function
// without its own, and turns discovery off.
func WithDefaultConcurrencyLimit(n int) InvokerOption {
	return func(c *invokerConfig) error {
		if n < 1 {
			return fmt.Errorf("default concurrency limit %d must be at least 1", n)
		}
		c.defaultLimit = n
		return nil
	}
}

// WithSyncAPI chooses the action for synchronous calls (default
// APIInvokeFunction).
func WithSyncAPI(api InvokeAPI) InvokerOption {
	return func(c *invokerConfig) error {
		if api != APIInvokeFunction && api != APIInvoke {
			return fmt.Errorf("sync API %q: must be InvokeFunction or Invoke", api)
		}
		c.api = api
		return nil
	}
}

// WithInvokerRetry sets the retry policy; zero fields keep the defaults.
func WithInvokerRetry(p InvokerRetry) InvokerOption {
	return func(c *invokerConfig) error {
		if p.MinWait < 0 || p.MaxWait < 0 || p.ExecutionAttempts < 0 {
			return errors.New("InvokerRetry: waits and ExecutionAttempts must not be negative")
		}
		c.retry = p.withDefaults()
		return nil
	}
}

// WithInvokerClock sets the clock the Invoker waits on and counts its
// start budget and warm instances by (default: the host's).
func WithInvokerClock(clock Clock) InvokerOption {
	return func(c *invokerConfig) error {
		if clock == nil {
			return errors.New("invoker clock must not be nil")
		}
		c.clock = clock
		return nil
	}
}

// WithScaleOutRate sets the Invoker's start budget: how many new instances
// its calls may start in any ScaleOutWindow, all functions together
// (default ScaleOutPerMinute, SCF's burst of 500 per minute per account
// and region; set it to what a ticket or package raised it to, or to a
// share of it when several processes call in the same account and
// region). n must be at least 1.
func WithScaleOutRate(n int) InvokerOption {
	return func(c *invokerConfig) error {
		if n < 1 {
			return fmt.Errorf("scale-out rate %d: must be at least 1 new instance per minute", n)
		}
		c.rate = n
		return nil
	}
}

// WithWarmRetention sets how long the Invoker counts on an idle instance
// staying warm after its last call (default DefaultWarmRetention). d must
// be positive.
func WithWarmRetention(d time.Duration) InvokerOption {
	return func(c *invokerConfig) error {
		if d <= 0 {
			return fmt.Errorf("warm retention %v: must be positive", d)
		}
		c.retention = d
		return nil
	}
}

// WithInvokerLogger sets a logger for retries; the default is silent.
func WithInvokerLogger(l *slog.Logger) InvokerOption {
	return func(c *invokerConfig) error {
		if l == nil {
			return errors.New("invoker logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// InvokerInput is one invocation.
type InvokerInput struct {
	FunctionName string // Required.
	Namespace    string
	// Qualifier is a version or alias; the default depends on the action
	// (see InvokeAPI).
	Qualifier string
	// Event is the event, JSON.
	Event string
	// Async queues the event (Invoke with InvocationType Event) and
	// returns its FunctionRequestId at once.
	Async      bool
	LogType    string
	RoutingKey string
	// Idempotent lets the Invoker retry a call that failed in execution
	// (433, 434, 439, user code), with a system error, or on the network
	// after it was sent: only safe when running the function twice is.
	Idempotent bool
}

// InvokerOutput is the outcome of a successful invocation.
type InvokerOutput struct {
	// Result is the execution's result; for an asynchronous call, only
	// FunctionRequestId.
	Result Result
	// RequestId is the API request id of the last attempt.
	RequestId string //nolint:revive
	// Attempts counts the calls sent.
	Attempts int
	// Overruns counts the 429 and 432 answers absorbed on the way.
	Overruns int
}

// InvokerStats are an Invoker's counters since it was made.
type InvokerStats struct {
	Calls     int64 // Invoke calls
	Succeeded int64
	Failed    int64
	Attempts  int64 // API calls sent
	InFlight  int64 // invocations sent and not yet answered
	Waiting   int64 // calls waiting for a slot, an instance, the start budget or a retry
	// Starts counts the calls sent beyond the warm instances the Invoker
	// knew of, each spending one new instance of the start budget;
	// WarmSends those sent to an idle or provisioned instance it knew of.
	Starts, WarmSends int64
	// Met429 and Met432 count the overrun answers received; Absorbed429
	// and Absorbed432 those of calls that then succeeded.
	Met429, Met432           int64
	Absorbed429, Absorbed432 int64
	// ExecutionRetries counts retries of idempotent calls after an
	// execution, system or network failure.
	ExecutionRetries int64
}

// Invoker runs synchronous invocations of SCF functions within the two
// limits SCF enforces, so that a burst meets neither 432 nor 429, and
// absorbs them when it does.
//
// The quota (432). The Invoker keeps the invocations of each function in
// flight under the limit its quota allows — the reserved quota ÷
// MemorySize, or, without a reservation, the account's unreserved share ÷
// MemorySize (discovered once per function, at its first call, with
// GetFunction, GetReservedConcurrencyConfig and GetAccount; MemorySize is
// that of the version called, or of $LATEST for an alias; or set with
// WithConcurrencyLimit) — and makes the calls beyond it wait their turn,
// first come first served. A reservation of 0 MB is a limit of 0: calls
// fail with 432 without being sent. Provisioned concurrency does not raise
// the limit, as it does not raise SCF's.
//
// The scale-out rate (429). SCF starts at most 500 new instances per
// minute per account and region. The Invoker keeps a start budget, shared
// by all its calls to all functions: at most WithScaleOutRate (default
// 500) calls sent as new instances in any ScaleOutWindow (a minute and a
// second's margin), counted from when each was sent. It sends a call as a
// new instance only when it knows of no warm instance for it, so a burst
// beyond the budget waits for instances its own calls free rather than
// for the next minute. Its estimate of the warm instances of each
// function and qualifier (instances are per version):
//
//   - a call that finishes — successfully, or with an execution error
//     that leaves the instance up (430, user code) — frees a warm instance,
//     idle from then on, which the next waiting call takes (SCF, like the
//     Invoker, reuses the most recently freed one);
//   - an instance freed within ReplyWindow after a call was sent as a new
//     instance may have gone to that call, as SCF prefers a warm instance
//     to a new one: the Invoker counts one instance for the two;
//   - an idle instance is counted on for WithWarmRetention (default 1
//     minute) after its last call and then forgotten, as SCF recycles idle
//     instances after a period of its own;
//   - a call that recycles its instance (433, 434, 439), or whose fate is
//     unknown (network error, context ended in flight, 5xx), frees none;
//   - for a published version, the instances GetProvisionedConcurrencyConfig
//     reports available (read once, at its first call) are warm for good,
//     and are used first, as SCF uses them;
//   - a 429 proves the estimate wrong (SCF recycled an instance early, or
//     an alias split its calls between two versions, which the Invoker
//     counts as one): the pool's idle instances are forgotten, and its
//     provisioned count lowered to those busy.
//
// A call takes, in order of arrival, a known warm instance, or, if there
// is none, the start budget; when there is neither it waits for a call to
// finish or for the budget's oldest start to leave the window. Instances
// started elsewhere (other processes, asynchronous events, warm instances
// the Invoker does not know of) are not counted: undercounting only
// spends budget that was not needed, but another user of the account's
// burst can still cause 429s.
//
// On a 429 the call goes back to the head of the line, keeping its place,
// to wait for a warm instance or for the budget, which the 429 has shown
// to be spent: no call is sent as a new instance until a probe gets
// through. Probes go one at a time, after a backoff that grows with each
// 429 (from MinWait, doubling, at most MaxWait and the window); a probe
// gets through when it is answered without a 429 or has no answer within
// ReplyWindow (SCF turns a call away at once), and the budget then opens
// again. So the calls turned away do not all return into the same wall.
// A 432 is retried with exponential backoff.
// The Invoker never retries 433, 434 or user-code errors unless the call
// is marked Idempotent. Every wait ends with the call's context: a call
// whose context ends before it is sent gives its slot, instance and start
// back at once; one in flight frees its slot, and its instance and start
// count as spent.
//
// The Invoker has no goroutines of its own: all waiting happens in the
// callers' goroutines (the oldest call waiting for the budget sleeps on
// the clock for the others). It is safe for concurrent use.
type Invoker struct {
	c            *Client
	api          InvokeAPI
	retry        InvokerRetry
	clock        Clock
	logger       *slog.Logger
	explicit     map[string]int
	defaultLimit int
	retention    time.Duration

	mu     sync.Mutex
	fns    map[string]*fnSlots
	budget startBudget
	queued []*pool // pools with calls waiting, in no order
	keeper *waiter // the waiting call that sleeps until the budget opens
	seq    uint64  // arrival order of calls

	calls, succeeded, failed, attempts, inFlight, waiting atomic.Int64
	starts, warmSends                                     atomic.Int64
	met429, met432, absorbed429, absorbed432, execRetries atomic.Int64
}

// fnSlots is one function's in-flight accounting, guarded by Invoker.mu.
type fnSlots struct {
	limit       int
	known       bool
	discovering chan struct{} // non-nil while a caller discovers the limit
	inFlight    int
	pools       map[string]*pool // by qualifier as given
}

// pool is what the Invoker knows of the instances of one function and
// qualifier, and the calls waiting for one; guarded by Invoker.mu.
type pool struct {
	fs        *fnSlots
	qualifier string
	// idle holds when each known idle elastic instance was freed, oldest
	// first.
	idle []time.Time
	// provisioned is the count of provisioned instances known, provBusy
	// how many of them the Invoker's calls hold.
	provisioned, provBusy int
	provLooked            bool          // the provisioned count was read (or needs no reading)
	provLooking           chan struct{} // non-nil while a caller reads it
	queue                 []*waiter     // by seq
	listed                bool          // in Invoker.queued
	// fresh holds the calls sent as new instances in the last
	// ReplyWindow and still in flight, oldest first, that no freed
	// instance has been lent to.
	fresh []*waiter
}

// lendLocked finds the call sent as a new instance that an instance freed
// now may have gone to: the latest sent within ReplyWindow. It is taken
// off fresh.
func (p *pool) lendLocked(now time.Time) *waiter {
	i := 0
	for i < len(p.fresh) && now.Sub(p.fresh[i].at) > ReplyWindow {
		i++
	}
	p.fresh = append(p.fresh[:0], p.fresh[i:]...)
	if n := len(p.fresh); n > 0 {
		s := p.fresh[n-1]
		p.fresh = p.fresh[:n-1]
		return s
	}
	return nil
}

func (p *pool) unfresh(w *waiter) {
	if i := slices.Index(p.fresh, w); i >= 0 {
		p.fresh = slices.Delete(p.fresh, i, i+1)
	}
}

// hasWarm reports which known warm instance the next call would take.
func (p *pool) hasWarm(now time.Time, retention time.Duration) (sendKind, bool) {
	if p.provBusy < p.provisioned {
		return sendProvisioned, true
	}
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i]) >= retention {
		i++
	}
	if i > 0 {
		p.idle = append(p.idle[:0], p.idle[i:]...)
	}
	if len(p.idle) > 0 {
		return sendWarm, true
	}
	return 0, false
}

// putIdle records an idle instance freed at t, keeping idle sorted.
func (p *pool) putIdle(t time.Time) {
	i := len(p.idle)
	for i > 0 && p.idle[i-1].After(t) {
		i--
	}
	p.idle = slices.Insert(p.idle, i, t)
}

// sendKind is how a call was admitted.
type sendKind uint8

const (
	sendStart       sendKind = iota // as a new instance, spending the start budget
	sendWarm                        // to a known idle elastic instance
	sendProvisioned                 // to a known provisioned instance
)

// waiter is one call's place in line; its fields are guarded by
// Invoker.mu.
type waiter struct {
	p       *pool
	seq     uint64
	sig     chan struct{} // buffered: granted, or made the keeper
	wake    context.CancelFunc
	granted bool
	kind    sendKind
	probe   uint64    // the id of the probe this start is, or 0
	at      time.Time // the start's budget entry, or the idle instance's time
	lent    bool      // a start that a freed elastic instance was lent to
}

func (w *waiter) signal() {
	select {
	case w.sig <- struct{}{}:
	default:
	}
	if w.wake != nil {
		w.wake()
	}
}

// startBudget counts the new instances the Invoker's calls started in the
// last ScaleOutWindow; guarded by Invoker.mu.
type startBudget struct {
	rate   int
	starts []time.Time // when each start in the window was sent, oldest first
	// After a 429, the budget is closed until blockedUntil, and then open
	// to one probe at a time until a probe gets through: it is answered
	// without a 429, or has no answer by probeUntil.
	blockedUntil, probeUntil time.Time
	probing, probeOut        bool
	probeID                  uint64 // the last probe's
	fails                    int    // 429s that closed the budget since it was last open
}

// isOut reports whether probe is the probe the budget waits for.
func (b *startBudget) isOut(probe uint64) bool {
	return probe != 0 && b.probing && b.probeOut && b.probeID == probe
}

func (b *startBudget) prune(now time.Time) {
	i := 0
	for i < len(b.starts) && now.Sub(b.starts[i]) >= ScaleOutWindow {
		i++
	}
	if i > 0 {
		b.starts = append(b.starts[:0], b.starts[i:]...)
	}
}

// open reports whether a call may be sent as a new instance now.
func (b *startBudget) open(now time.Time) bool {
	b.prune(now)
	if b.probing && b.probeOut && !now.Before(b.probeUntil) {
		b.passed() // no 429 in time: the probe got an instance
	}
	return !now.Before(b.blockedUntil) && !(b.probing && b.probeOut) && len(b.starts) < b.rate
}

// passed ends probing: the burst has room again.
func (b *startBudget) passed() {
	b.probing, b.probeOut, b.fails = false, false, 0
}

// next returns when the budget opens with the passing of time alone; false
// if it does not (it is open).
func (b *startBudget) next(now time.Time) (time.Time, bool) {
	t := b.blockedUntil
	if b.probing && b.probeOut && b.probeUntil.After(t) {
		t = b.probeUntil
	}
	if n := len(b.starts); n >= b.rate {
		if end := b.starts[n-b.rate].Add(ScaleOutWindow); end.After(t) {
			t = end
		}
	}
	return t, t.After(now)
}

// take spends one start; it returns the probe's id if the start is one.
func (b *startBudget) take(now time.Time) uint64 {
	b.starts = append(b.starts, now)
	if b.probing {
		b.probeID++
		b.probeOut, b.probeUntil = true, now.Add(ReplyWindow)
		return b.probeID
	}
	return 0
}

// refund gives back a start that started nothing.
func (b *startBudget) refund(at time.Time, probe uint64) {
	for i := len(b.starts) - 1; i >= 0; i-- {
		if b.starts[i].Equal(at) {
			b.starts = slices.Delete(b.starts, i, i+1)
			break
		}
	}
	if b.isOut(probe) {
		b.probeOut = false
	}
}

// NewInvoker returns an Invoker over c.
func NewInvoker(c *Client, opts ...InvokerOption) (*Invoker, error) {
	if c == nil {
		return nil, errors.New("scf: NewInvoker: client must not be nil")
	}
	cfg := invokerConfig{
		api: APIInvokeFunction, retry: InvokerRetry{}.withDefaults(), clock: hostClock{},
		logger: slog.New(slog.DiscardHandler), explicit: make(map[string]int),
		retention: DefaultWarmRetention, rate: ScaleOutPerMinute,
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("scf: NewInvoker: InvokerOption must not be nil")
		}
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("scf: NewInvoker: %w", err)
		}
	}
	return &Invoker{
		c: c, api: cfg.api, retry: cfg.retry, clock: cfg.clock, logger: cfg.logger,
		explicit: cfg.explicit, defaultLimit: cfg.defaultLimit, retention: cfg.retention,
		fns: make(map[string]*fnSlots), budget: startBudget{rate: cfg.rate},
	}, nil
}

// functionKey turns "name" or "namespace/name" into "namespace/name".
func functionKey(function string) (string, error) {
	ns, name, ok := strings.Cut(function, "/")
	if !ok {
		ns, name = DefaultNamespace, function
	}
	if ns == "" {
		ns = DefaultNamespace
	}
	if r := functionNameRule(name); r != "" {
		return "", fmt.Errorf("function %q: FunctionName %s", function, r)
	}
	return ns + "/" + name, nil
}

func keyOf(namespace, name string) string {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return namespace + "/" + name
}

// Stats returns the Invoker's counters.
func (iv *Invoker) Stats() InvokerStats {
	return InvokerStats{
		Calls: iv.calls.Load(), Succeeded: iv.succeeded.Load(), Failed: iv.failed.Load(),
		Attempts: iv.attempts.Load(), InFlight: iv.inFlight.Load(), Waiting: iv.waiting.Load(),
		Starts: iv.starts.Load(), WarmSends: iv.warmSends.Load(),
		Met429: iv.met429.Load(), Met432: iv.met432.Load(),
		Absorbed429: iv.absorbed429.Load(), Absorbed432: iv.absorbed432.Load(),
		ExecutionRetries: iv.execRetries.Load(),
	}
}

// InFlight returns the number of invocations of function ("name" or
// "namespace/name") in flight.
func (iv *Invoker) InFlight(function string) int {
	key, err := functionKey(function)
	if err != nil {
		return 0
	}
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if fs := iv.fns[key]; fs != nil {
		return fs.inFlight
	}
	return 0
}

// WarmInstances returns the instances of function the Invoker counts on
// (idle, busy with its calls, and provisioned), all qualifiers together.
func (iv *Invoker) WarmInstances(function string) int {
	key, err := functionKey(function)
	if err != nil {
		return 0
	}
	iv.mu.Lock()
	defer iv.mu.Unlock()
	fs := iv.fns[key]
	if fs == nil {
		return 0
	}
	now := iv.clock.Now()
	n := fs.inFlight
	for _, p := range fs.pools {
		p.hasWarm(now, iv.retention)
		n += len(p.idle) + max(p.provisioned-p.provBusy, 0)
	}
	return n
}

// Limit returns the in-flight limit of function and whether it is known
// yet.
func (iv *Invoker) Limit(function string) (int, bool) {
	key, err := functionKey(function)
	if err != nil {
		return 0, false
	}
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if fs := iv.fns[key]; fs != nil && fs.known {
		return fs.limit, true
	}
	if n, ok := iv.explicit[key]; ok {
		return n, true
	}
	return 0, false
}

// SetConcurrencyLimit changes a function's in-flight limit at once (n ≥ 1);
// calls in flight beyond a lowered limit finish normally.
func (iv *Invoker) SetConcurrencyLimit(function string, n int) error {
	if n < 1 {
		return fmt.Errorf("scf: concurrency limit of %s: %d must be at least 1", function, n)
	}
	key, err := functionKey(function)
	if err != nil {
		return fmt.Errorf("scf: %w", err)
	}
	iv.mu.Lock()
	defer iv.mu.Unlock()
	iv.explicit[key] = n
	fs := iv.slotsLocked(key)
	fs.limit, fs.known = n, true
	iv.grantLocked()
	return nil
}

// ForgetLimit drops a discovered limit, so the next call discovers it
// again (after a change of the reservation, say), and the provisioned
// counts read for the function's versions. Explicit limits stay.
func (iv *Invoker) ForgetLimit(function string) {
	key, err := functionKey(function)
	if err != nil {
		return
	}
	iv.mu.Lock()
	defer iv.mu.Unlock()
	fs := iv.fns[key]
	if fs == nil {
		return
	}
	for _, p := range fs.pools {
		if p.provLooking == nil {
			p.provLooked = false
		}
	}
	if _, ok := iv.explicit[key]; ok || iv.defaultLimit > 0 {
		return
	}
	if fs.discovering == nil {
		fs.known = false
	}
}

func (iv *Invoker) slotsLocked(key string) *fnSlots {
	fs := iv.fns[key]
	if fs == nil {
		fs = &fnSlots{pools: make(map[string]*pool)}
		if n, ok := iv.explicit[key]; ok {
			fs.limit, fs.known = n, true
		} else if iv.defaultLimit > 0 {
			fs.limit, fs.known = iv.defaultLimit, true
		}
		iv.fns[key] = fs
	}
	return fs
}

func (fs *fnSlots) poolLocked(qualifier string) *pool {
	p := fs.pools[qualifier]
	if p == nil {
		p = &pool{fs: fs, qualifier: qualifier, provLooked: !isVersion(qualifier)}
		fs.pools[qualifier] = p
	}
	return p
}

// slots returns the function's accounting, discovering its limit first if
// needed. Concurrent first calls wait for one discovery.
func (iv *Invoker) slots(ctx context.Context, in *InvokerInput) (*fnSlots, error) {
	key := keyOf(in.Namespace, in.FunctionName)
	for {
		iv.mu.Lock()
		fs := iv.slotsLocked(key)
		if fs.known {
			iv.mu.Unlock()
			return fs, nil
		}
		if ch := fs.discovering; ch != nil {
			iv.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		fs.discovering = ch
		iv.mu.Unlock()

		limit, err := iv.discover(ctx, in)

		iv.mu.Lock()
		fs.discovering = nil
		if err == nil {
			fs.limit, fs.known = limit, true
			iv.grantLocked()
		}
		close(ch)
		iv.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("scf: discovering the concurrency limit of %s: %w", key, err)
		}
		iv.logger.Debug("scf invoker limit", "function", key, "limit", limit)
		return fs, nil
	}
}

// discover computes the function's limit from its quota.
func (iv *Invoker) discover(ctx context.Context, in *InvokerInput) (int, error) {
	qualifier := ""
	if isVersion(in.Qualifier) {
		qualifier = in.Qualifier
	}
	fn, err := iv.c.GetFunction(ctx, &GetFunctionInput{FunctionName: in.FunctionName, Namespace: in.Namespace, Qualifier: qualifier})
	if err != nil {
		return 0, err
	}
	if fn.MemorySize <= 0 {
		return 0, fmt.Errorf("GetFunction reported MemorySize %d", fn.MemorySize)
	}
	res, err := iv.c.GetReservedConcurrencyConfig(ctx, &GetReservedConcurrencyConfigInput{FunctionName: in.FunctionName, Namespace: in.Namespace})
	if err != nil {
		return 0, err
	}
	if res.ReservedMem != nil {
		return int(min(*res.ReservedMem/uint64(fn.MemorySize), 1<<30)), nil
	}
	acct, err := iv.c.GetAccount(ctx, nil)
	if err != nil {
		return 0, err
	}
	total := acct.AccountUsage.UserConcurrencyMemLimit
	if total <= 0 {
		total = acct.AccountUsage.TotalConcurrencyMem
	}
	share := total - acct.AccountUsage.TotalAllocatedConcurrencyMem
	return int(max(share/fn.MemorySize, 0)), nil
}

// pool returns the instances of the call's qualifier, reading the
// version's provisioned instances first if needed (once; a failure to
// read counts none).
func (iv *Invoker) pool(ctx context.Context, fs *fnSlots, in *InvokerInput) (*pool, error) {
	for {
		iv.mu.Lock()
		p := fs.poolLocked(in.Qualifier)
		if p.provLooked {
			iv.mu.Unlock()
			return p, nil
		}
		if ch := p.provLooking; ch != nil {
			iv.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		p.provLooking = ch
		iv.mu.Unlock()

		n := 0
		out, err := iv.c.GetProvisionedConcurrencyConfig(ctx, &GetProvisionedConcurrencyConfigInput{
			FunctionName: in.FunctionName, Namespace: in.Namespace, Qualifier: in.Qualifier})
		if err == nil {
			for _, a := range out.Allocated {
				if a.Qualifier == in.Qualifier {
					n = int(min(a.AvailableProvisionedConcurrencyNum, 1<<30))
				}
			}
		} else {
			iv.logger.Debug("scf invoker: provisioned instances not read; counting none",
				"function", keyOf(in.Namespace, in.FunctionName), "qualifier", in.Qualifier, "error", err)
		}

		iv.mu.Lock()
		p.provLooking = nil
		if err == nil || ctx.Err() == nil {
			p.provisioned, p.provLooked = n, true
			iv.grantLocked()
		}
		close(ch)
		iv.mu.Unlock()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return p, nil
	}
}

// admit puts w in line and waits until it may be sent: with a slot under
// the function's limit, and a warm instance or a start from the budget.
func (iv *Invoker) admit(ctx context.Context, w *waiter) error {
	iv.mu.Lock()
	if w.seq == 0 {
		iv.seq++
		w.seq = iv.seq
	}
	w.granted, w.probe = false, 0
	iv.enqueueLocked(w)
	iv.grantLocked()
	granted := w.granted
	iv.mu.Unlock()
	if granted {
		return nil
	}
	iv.waiting.Add(1)
	defer iv.waiting.Add(-1)
	for {
		iv.mu.Lock()
		if w.granted {
			iv.mu.Unlock()
			return nil
		}
		if iv.keeper == w {
			now := iv.clock.Now()
			if t, ok := iv.budget.next(now); ok {
				sctx, cancel := context.WithCancel(ctx)
				w.wake = cancel
				iv.mu.Unlock()
				_ = iv.clock.Sleep(sctx, t.Sub(now))
				cancel()
				iv.mu.Lock()
				w.wake = nil
				if !w.granted && ctx.Err() == nil {
					if iv.keeper == w {
						iv.keeper = nil
					}
					iv.grantLocked() // may grant w, or make it the keeper again
				}
				iv.mu.Unlock()
				if ctx.Err() != nil {
					return iv.abandon(w, ctx.Err())
				}
				continue
			}
			iv.keeper = nil // an answer, not time, opens the budget now
		}
		iv.mu.Unlock()
		select {
		case <-w.sig:
		case <-ctx.Done():
			return iv.abandon(w, ctx.Err())
		}
	}
}

// abandon takes w out of line, or gives back what it was granted.
func (iv *Invoker) abandon(w *waiter, err error) error {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	p := w.p
	if w.granted {
		iv.undoLocked(w)
	} else if i := slices.Index(p.queue, w); i >= 0 {
		p.queue = slices.Delete(p.queue, i, i+1)
		if len(p.queue) == 0 {
			iv.unlistLocked(p)
		}
	}
	if iv.keeper == w {
		iv.keeper = nil
	}
	iv.grantLocked()
	return err
}

// undoLocked gives back a grant that sent nothing, or started nothing.
func (iv *Invoker) undoLocked(w *waiter) {
	p := w.p
	p.fs.inFlight--
	switch w.kind {
	case sendProvisioned:
		p.provBusy--
	case sendWarm:
		p.putIdle(w.at)
	case sendStart:
		iv.budget.refund(w.at, w.probe)
		p.unfresh(w)
		if w.lent { // the instance lent to it is idle after all
			p.putIdle(iv.clock.Now())
		}
	}
	w.granted = false
}

func (iv *Invoker) enqueueLocked(w *waiter) {
	p := w.p
	i := len(p.queue)
	for i > 0 && p.queue[i-1].seq > w.seq { // a call sent back after a 429 keeps its place
		i--
	}
	p.queue = slices.Insert(p.queue, i, w)
	if !p.listed {
		p.listed = true
		iv.queued = append(iv.queued, p)
	}
}

func (iv *Invoker) unlistLocked(p *pool) {
	p.listed = false
	if i := slices.Index(iv.queued, p); i >= 0 {
		iv.queued = slices.Delete(iv.queued, i, i+1)
	}
}

// grantLocked admits waiting calls, oldest first, while some can go, and
// then makes sure a call sleeps until the budget opens if only time can
// open it.
func (iv *Invoker) grantLocked() {
	now := iv.clock.Now()
	for {
		var best *pool
		var kind sendKind
		for _, p := range iv.queued {
			if p.fs.inFlight >= p.fs.limit {
				continue
			}
			k, ok := p.hasWarm(now, iv.retention)
			if !ok {
				if !iv.budget.open(now) {
					continue
				}
				k = sendStart
			}
			if best == nil || p.queue[0].seq < best.queue[0].seq {
				best, kind = p, k
			}
		}
		if best == nil {
			break
		}
		w := best.queue[0]
		best.queue[0] = nil
		best.queue = best.queue[1:]
		if len(best.queue) == 0 {
			iv.unlistLocked(best)
		}
		w.granted, w.kind = true, kind
		best.fs.inFlight++
		switch kind {
		case sendProvisioned:
			best.provBusy++
		case sendWarm:
			w.at = best.idle[len(best.idle)-1] // the most recently freed, as SCF picks
			best.idle = best.idle[:len(best.idle)-1]
		case sendStart:
			w.at, w.probe, w.lent = now, iv.budget.take(now), false
			best.fresh = append(best.fresh, w)
		}
		if iv.keeper == w {
			iv.keeper = nil
		}
		w.signal()
	}
	if iv.keeper != nil {
		return
	}
	if _, ok := iv.budget.next(now); !ok {
		return
	}
	var head *waiter // the oldest call that only the budget holds back
	for _, p := range iv.queued {
		if p.fs.inFlight < p.fs.limit && (head == nil || p.queue[0].seq < head.seq) {
			head = p.queue[0]
		}
	}
	if head != nil {
		iv.keeper = head
		head.signal()
	}
}

// outcome is what an answer says about the instance a call was sent to.
type outcome uint8

const (
	ranIdle   outcome = iota // it ran and its instance is idle again
	ranGone                  // it ran and its instance was recycled (433, 434, 439)
	unknown                  // it may have run: network error, 5xx, context ended in flight
	notPlaced                // nothing was placed: rejected before an instance was chosen
	throttled                // 429: there was no warm instance, and the burst is spent
)

func outcomeOf(err error) outcome {
	if err == nil {
		return ranIdle
	}
	var fe *FunctionError
	if errors.As(err, &fe) {
		switch fe.StatusCode {
		case StatusResourceLimit:
			return throttled
		case StatusResourceLimitReached:
			return notPlaced
		case StatusTimeLimitReached, StatusMemoryLimitReached, StatusUserProcessExit:
			return ranGone
		}
		switch fe.Class() {
		case ClassExecution:
			return ranIdle
		case ClassRequest:
			return notPlaced
		}
		return unknown
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return notPlaced
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.HTTPStatus < 500 && apiErr.Code != CodeInternalError && !strings.HasPrefix(apiErr.Code, "InternalError.") {
		return notPlaced
	}
	return unknown
}

// settle records the answer to a call sent as w, frees its slot and lets
// the next calls go.
func (iv *Invoker) settle(w *waiter, err error) outcome {
	o := outcomeOf(err)
	iv.mu.Lock()
	defer iv.mu.Unlock()
	p, now := w.p, iv.clock.Now()
	if w.kind == sendStart && o != notPlaced {
		p.unfresh(w)
	}
	switch o {
	case notPlaced:
		iv.undoLocked(w)
		iv.grantLocked()
		return o
	case throttled:
		if w.kind == sendProvisioned {
			p.provBusy--
			w.kind = sendWarm // counted down already
		}
		p.idle = p.idle[:0]
		p.provisioned = min(p.provisioned, p.provBusy)
		if !now.Before(iv.budget.blockedUntil) {
			iv.budget.fails++
			pause := retry.Exponential(iv.retry.MinWait, min(iv.retry.MaxWait, ScaleOutWindow))
			iv.budget.blockedUntil = now.Add(pause.Delay(iv.budget.fails))
		}
		iv.budget.probing, iv.budget.probeOut = true, false
	case ranIdle, ranGone:
		if iv.budget.isOut(w.probe) {
			iv.budget.passed()
		}
		if o == ranIdle {
			if s := p.lendLocked(now); s != nil {
				// SCF may have given this instance to s, sent as a new
				// one just before: count one instance for the two. If it
				// started one for s instead, that one goes uncounted.
				if iv.budget.isOut(s.probe) {
					iv.budget.probeOut = false // s's answer proves nothing now
				}
				if w.kind == sendProvisioned {
					s.kind, w.kind = sendProvisioned, sendWarm // s holds it now
				} else {
					s.lent = true
				}
			} else if w.kind != sendProvisioned {
				p.putIdle(now)
			}
		}
	case unknown:
		if iv.budget.isOut(w.probe) {
			iv.budget.probeOut = false
		}
	}
	if w.kind == sendProvisioned {
		p.provBusy--
	}
	p.fs.inFlight--
	w.granted = false
	iv.grantLocked()
	return o
}

func (in *InvokerInput) validate(api InvokeAPI) (string, string) {
	if in.Async || api == APIInvoke {
		typ := InvocationRequestResponse
		if in.Async {
			typ = InvocationEvent
		}
		ii := InvokeInput{FunctionName: in.FunctionName, InvocationType: typ, ClientContext: in.Event,
			LogType: in.LogType, RoutingKey: in.RoutingKey}
		if f, r := ii.validate(); f == "ClientContext" {
			return "Event", r
		} else if f != "" {
			return f, r
		}
		return "", ""
	}
	fi := InvokeFunctionInput{FunctionName: in.FunctionName, Event: in.Event, LogType: in.LogType, RoutingKey: in.RoutingKey}
	return fi.validate()
}

// Invoke runs one invocation: synchronously, within the function's limit
// and the start budget and with the Invoker's retries, or, with Async, by
// queueing the event and returning its FunctionRequestId at once
// (asynchronous events hold no slot and spend no budget: SCF runs them
// from its own queue). A failure is the last *FunctionError or API error,
// wrapped with the number of attempts.
func (iv *Invoker) Invoke(ctx context.Context, in *InvokerInput) (*InvokerOutput, error) {
	if in == nil {
		return nil, &ValidationError{Service: Service, Action: "Invoker.Invoke", Field: "input", Rule: "must not be nil"}
	}
	if f, r := in.validate(iv.api); f != "" {
		return nil, &ValidationError{Service: Service, Action: "Invoker.Invoke", Field: f, Rule: r}
	}
	iv.calls.Add(1)
	out, err := iv.invoke(ctx, in)
	if err != nil {
		iv.failed.Add(1)
		return nil, err
	}
	iv.succeeded.Add(1)
	return out, nil
}

func (iv *Invoker) invoke(ctx context.Context, in *InvokerInput) (*InvokerOutput, error) {
	if in.Async {
		iv.attempts.Add(1)
		out, err := iv.c.Invoke(ctx, &InvokeInput{
			FunctionName: in.FunctionName, Namespace: in.Namespace, Qualifier: in.Qualifier,
			InvocationType: InvocationEvent, ClientContext: in.Event, RoutingKey: in.RoutingKey,
		})
		if err != nil {
			return nil, err
		}
		return &InvokerOutput{Result: out.Result, RequestId: out.RequestId, Attempts: 1}, nil
	}
	iv.waiting.Add(1)
	fs, err := iv.slots(ctx, in)
	var p *pool
	if err == nil {
		p, err = iv.pool(ctx, fs, in)
	}
	iv.waiting.Add(-1)
	if err != nil {
		return nil, err
	}
	name := keyOf(in.Namespace, in.FunctionName)
	if fs.limit == 0 {
		return nil, &FunctionError{
			Action: "Invoker.Invoke", FunctionName: in.FunctionName, Qualifier: in.Qualifier,
			StatusCode: StatusResourceLimitReached, Name: StatusName(StatusResourceLimitReached),
			Message: "the function's reserved concurrency is 0 MB: it is disabled, so the Invoker sent nothing",
		}
	}
	var (
		out                      InvokerOutput
		met429, met432, execRuns int
		pauses                   int // backoffs so far (432 and idempotent retries)
		spent                    int // retry budget tokens the retries took
		last                     error
		w                        = &waiter{p: p, sig: make(chan struct{}, 1)}
	)
	for {
		if err := iv.admit(ctx, w); err != nil {
			return nil, iv.gaveUp(name, out.Attempts, last, err)
		}
		if w.kind == sendStart {
			iv.starts.Add(1)
		} else {
			iv.warmSends.Add(1)
		}
		iv.inFlight.Add(1)
		iv.attempts.Add(1)
		out.Attempts++
		res, reqID, err := iv.send(ctx, in)
		iv.inFlight.Add(-1)
		iv.settle(w, err)
		if err == nil {
			if spent > 0 {
				iv.c.retryBudget().Succeeded(spent) // what the retries took comes back
			}
			out.Result, out.RequestId, out.Overruns = res, reqID, met429+met432
			iv.absorbed429.Add(int64(met429))
			iv.absorbed432.Add(int64(met432))
			return &out, nil
		}
		last = err
		if ctx.Err() != nil {
			return nil, iv.gaveUp(name, out.Attempts, err, ctx.Err())
		}
		var wait time.Duration
		var fe *FunctionError
		isFE := errors.As(err, &fe)
		switch {
		case isFE && fe.StatusCode == StatusResourceLimit:
			iv.met429.Add(1)
			met429++
			if iv.retry.MaxAttempts > 0 && out.Attempts >= iv.retry.MaxAttempts {
				return nil, iv.gaveUp(name, out.Attempts, err, nil)
			}
			// Back to the head of the line: the next warm instance or
			// the budget's next start, whichever comes first. Not
			// charged to the retry budget: admission paces it.
		case isFE && fe.StatusCode == StatusResourceLimitReached:
			iv.met432.Add(1)
			met432++
			if iv.retry.MaxAttempts > 0 && out.Attempts >= iv.retry.MaxAttempts {
				return nil, iv.gaveUp(name, out.Attempts, err, nil)
			}
			if !iv.chargeRetry(ctx, name, &spent) {
				return nil, iv.gaveUp(name, out.Attempts, err, nil)
			}
			pauses++
			wait = iv.retry.backoff().Delay(pauses)
			w.seq = 0 // to the back of the line after the pause
		case in.Idempotent && retryableWhenIdempotent(err, fe, isFE):
			execRuns++
			if execRuns >= iv.retry.ExecutionAttempts || (iv.retry.MaxAttempts > 0 && out.Attempts >= iv.retry.MaxAttempts) {
				return nil, iv.gaveUp(name, out.Attempts, err, nil)
			}
			if !iv.chargeRetry(ctx, name, &spent) {
				return nil, iv.gaveUp(name, out.Attempts, err, nil)
			}
			iv.execRetries.Add(1)
			pauses++
			wait = iv.retry.backoff().Delay(pauses)
			w.seq = 0
		default:
			return nil, iv.gaveUp(name, out.Attempts, err, nil)
		}
		if iv.logger.Enabled(ctx, slog.LevelDebug) {
			iv.logger.LogAttrs(ctx, slog.LevelDebug, "scf invoker retrying", slog.String("function", name),
				slog.Int("attempt", out.Attempts), slog.Int("status", FunctionStatus(err)), slog.Duration("wait", wait))
		}
		if wait > 0 {
			iv.waiting.Add(1)
			serr := iv.clock.Sleep(ctx, wait)
			iv.waiting.Add(-1)
			if serr != nil {
				return nil, iv.gaveUp(name, out.Attempts, err, serr)
			}
		}
	}
}

// chargeRetry takes the cost of one retry from the client's retry budget,
// adding it to *spent; it reports false, and logs why, when the budget is
// empty: the call then fails with its last error, as a call of the
// client's does.
func (iv *Invoker) chargeRetry(ctx context.Context, name string, spent *int) bool {
	cost, ok := iv.c.retryBudget().Spend(false)
	if !ok {
		iv.logger.LogAttrs(ctx, slog.LevelInfo, "scf invoker call not retried: the client's retry budget is empty",
			slog.String("function", name))
		return false
	}
	*spent += cost
	return true
}

// retryableWhenIdempotent: execution and system failures, and, in the
// SDK's one classification (retry.Classify), failures that may have reached
// the server (Transient, Internal) or never left (Unsent); never request
// errors, rejected input or other API answers.
func retryableWhenIdempotent(err error, fe *FunctionError, isFE bool) bool {
	if isFE {
		c := fe.Class()
		return c == ClassExecution || c == ClassSystem
	}
	return retry.Classify(err).Fault()
}

// gaveUp wraps the last failure (and the context's error, if it ended).
func (iv *Invoker) gaveUp(name string, attempts int, last, ctxErr error) error {
	switch {
	case ctxErr != nil && last != nil:
		return fmt.Errorf("scf invoker %s: %w after %d attempt(s); last: %w", name, ctxErr, attempts, last)
	case ctxErr != nil:
		return fmt.Errorf("scf invoker %s: %w after %d attempt(s)", name, ctxErr, attempts)
	case attempts > 1:
		return fmt.Errorf("scf invoker %s: gave up after %d attempts: %w", name, attempts, last)
	}
	return last
}

// send makes one synchronous call.
func (iv *Invoker) send(ctx context.Context, in *InvokerInput) (Result, string, error) {
	if iv.api == APIInvoke {
		out, err := iv.c.Invoke(ctx, &InvokeInput{
			FunctionName: in.FunctionName, Namespace: in.Namespace, Qualifier: in.Qualifier,
			InvocationType: InvocationRequestResponse, ClientContext: in.Event, LogType: in.LogType, RoutingKey: in.RoutingKey,
		})
		if err != nil {
			return Result{}, "", err
		}
		return out.Result, out.RequestId, nil
	}
	out, err := iv.c.InvokeFunction(ctx, &InvokeFunctionInput{
		FunctionName: in.FunctionName, Namespace: in.Namespace, Qualifier: in.Qualifier,
		Event: in.Event, LogType: in.LogType, RoutingKey: in.RoutingKey,
	})
	if err != nil {
		return Result{}, "", err
	}
	return out.Result, out.RequestId, nil
}
