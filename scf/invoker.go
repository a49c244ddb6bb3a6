package scf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
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
// marked idempotent, failed executions.
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
	// MinWait and MaxWait bound the exponential backoff after a 432 and
	// between idempotent retries (default 1 s and 30 s, ±50% jitter).
	MinWait, MaxWait time.Duration
	// MinuteJitter is the largest random delay after the next minute
	// boundary before a call that met 429 is sent again (0 means 2 s), so
	// the calls a burst turned away do not all return in the same
	// millisecond.
	MinuteJitter time.Duration
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
	if p.MinuteJitter == 0 {
		p.MinuteJitter = 2 * time.Second
	}
	return p
}

// InvokerOption configures an Invoker.
type InvokerOption func(*Invoker) error

// WithConcurrencyLimit sets the most invocations of one function the
// Invoker keeps in flight, instead of discovering it. function is "name"
// (namespace "default") or "namespace/name". n must be at least 1.
func WithConcurrencyLimit(function string, n int) InvokerOption {
	return func(iv *Invoker) error {
		if n < 1 {
			return fmt.Errorf("concurrency limit of %s: %d must be at least 1", function, n)
		}
		key, err := functionKey(function)
		if err != nil {
			return err
		}
		iv.explicit[key] = n
		return nil
	}
}

// WithDefaultConcurrencyLimit sets the in-flight limit of every function
// without its own, and turns discovery off.
func WithDefaultConcurrencyLimit(n int) InvokerOption {
	return func(iv *Invoker) error {
		if n < 1 {
			return fmt.Errorf("default concurrency limit %d must be at least 1", n)
		}
		iv.defaultLimit = n
		return nil
	}
}

// WithSyncAPI chooses the action for synchronous calls (default
// APIInvokeFunction).
func WithSyncAPI(api InvokeAPI) InvokerOption {
	return func(iv *Invoker) error {
		if api != APIInvokeFunction && api != APIInvoke {
			return fmt.Errorf("sync API %q: must be InvokeFunction or Invoke", api)
		}
		iv.api = api
		return nil
	}
}

// WithInvokerRetry sets the retry policy; zero fields keep the defaults.
func WithInvokerRetry(p InvokerRetry) InvokerOption {
	return func(iv *Invoker) error {
		if p.MinWait < 0 || p.MaxWait < 0 || p.MinuteJitter < 0 || p.ExecutionAttempts < 0 {
			return errors.New("InvokerRetry: waits and ExecutionAttempts must not be negative")
		}
		iv.retry = p.withDefaults()
		return nil
	}
}

// WithInvokerClock sets the clock the Invoker waits on (default: the
// host's). The 429 wait aims at this clock's next minute boundary.
func WithInvokerClock(c Clock) InvokerOption {
	return func(iv *Invoker) error {
		if c == nil {
			return errors.New("invoker clock must not be nil")
		}
		iv.clock = c
		return nil
	}
}

// WithInvokerLogger sets a logger for retries; the default is silent.
func WithInvokerLogger(l *slog.Logger) InvokerOption {
	return func(iv *Invoker) error {
		if l == nil {
			return errors.New("invoker logger must not be nil")
		}
		iv.logger = l
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
	Waiting   int64 // calls waiting for a slot or before a retry
	// Met429 and Met432 count the overrun answers received; Absorbed429
	// and Absorbed432 those of calls that then succeeded.
	Met429, Met432           int64
	Absorbed429, Absorbed432 int64
	// ExecutionRetries counts retries of idempotent calls after an
	// execution, system or network failure.
	ExecutionRetries int64
}

// Invoker runs invocations of SCF functions within their concurrency
// limits. It keeps the invocations of each function in flight under the
// limit its quota allows — the reserved quota ÷ MemorySize, or, without a
// reservation, the account's unreserved share ÷ MemorySize (discovered
// once per function, at its first call, with GetFunction,
// GetReservedConcurrencyConfig and GetAccount; MemorySize is that of the
// version called, or of $LATEST for an alias; or set with
// WithConcurrencyLimit) — and makes the calls beyond it wait their turn,
// first come first served. A reservation of 0 MB is a limit of 0: calls
// fail with 432 without being sent. Provisioned concurrency does not raise
// the limit, as it does not raise SCF's.
//
// It retries 429 (scale-out rate) at the next minute boundary of its clock
// plus jitter, when the next minute's burst opens, and 432 (quota) with
// exponential backoff, and never retries 433, 434 or user-code errors
// unless the call is marked Idempotent. Every wait ends with the call's
// context, and a call whose context ends gives its slot back at once.
//
// The Invoker has no goroutines of its own: all waiting happens in the
// callers' goroutines. It is safe for concurrent use.
type Invoker struct {
	c            *Client
	api          InvokeAPI
	retry        InvokerRetry
	clock        Clock
	logger       *slog.Logger
	explicit     map[string]int
	defaultLimit int

	mu  sync.Mutex
	fns map[string]*fnSlots

	calls, succeeded, failed, attempts, inFlight, waiting atomic.Int64
	met429, met432, absorbed429, absorbed432, execRetries atomic.Int64
}

// fnSlots is one function's in-flight accounting, guarded by Invoker.mu.
type fnSlots struct {
	limit       int
	known       bool
	discovering chan struct{} // non-nil while a caller discovers the limit
	inFlight    int
	waiters     []chan struct{}
}

// NewInvoker returns an Invoker over c.
func NewInvoker(c *Client, opts ...InvokerOption) (*Invoker, error) {
	if c == nil {
		return nil, errors.New("scf: NewInvoker: client must not be nil")
	}
	iv := &Invoker{
		c: c, api: APIInvokeFunction, retry: InvokerRetry{}.withDefaults(), clock: hostClock{},
		logger: slog.New(slog.DiscardHandler), explicit: make(map[string]int), fns: make(map[string]*fnSlots),
	}
	for _, opt := range opts {
		if err := opt(iv); err != nil {
			return nil, fmt.Errorf("scf: NewInvoker: %w", err)
		}
	}
	return iv, nil
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
	iv.grantLocked(fs)
	return nil
}

// ForgetLimit drops a discovered limit, so the next call discovers it
// again (after a change of the reservation, say). Explicit limits stay.
func (iv *Invoker) ForgetLimit(function string) {
	key, err := functionKey(function)
	if err != nil {
		return
	}
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if _, ok := iv.explicit[key]; ok || iv.defaultLimit > 0 {
		return
	}
	if fs := iv.fns[key]; fs != nil && fs.discovering == nil {
		fs.known = false
	}
}

func (iv *Invoker) slotsLocked(key string) *fnSlots {
	fs := iv.fns[key]
	if fs == nil {
		fs = &fnSlots{}
		if n, ok := iv.explicit[key]; ok {
			fs.limit, fs.known = n, true
		} else if iv.defaultLimit > 0 {
			fs.limit, fs.known = iv.defaultLimit, true
		}
		iv.fns[key] = fs
	}
	return fs
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
			iv.grantLocked(fs)
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

// acquire takes a slot, waiting in line if the function is at its limit.
func (iv *Invoker) acquire(ctx context.Context, fs *fnSlots) error {
	iv.mu.Lock()
	if fs.inFlight < fs.limit && len(fs.waiters) == 0 {
		fs.inFlight++
		iv.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	fs.waiters = append(fs.waiters, w)
	iv.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		iv.mu.Lock()
		defer iv.mu.Unlock()
		select {
		case <-w: // granted meanwhile: give it back
			fs.inFlight--
			iv.grantLocked(fs)
		default:
			for i, x := range fs.waiters {
				if x == w {
					fs.waiters = append(fs.waiters[:i], fs.waiters[i+1:]...)
					break
				}
			}
		}
		return ctx.Err()
	}
}

func (iv *Invoker) release(fs *fnSlots) {
	iv.mu.Lock()
	fs.inFlight--
	iv.grantLocked(fs)
	iv.mu.Unlock()
}

func (iv *Invoker) grantLocked(fs *fnSlots) {
	for len(fs.waiters) > 0 && fs.inFlight < fs.limit {
		w := fs.waiters[0]
		fs.waiters = fs.waiters[1:]
		fs.inFlight++
		close(w)
	}
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
// and with the Invoker's retries, or, with Async, by queueing the event
// and returning its FunctionRequestId at once (asynchronous events hold no
// slot: SCF runs them from its own queue). A failure is the last
// *FunctionError or API error, wrapped with the number of attempts.
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
		bo                       backoff.BackOff
	)
	for {
		iv.waiting.Add(1)
		err := iv.acquire(ctx, fs)
		iv.waiting.Add(-1)
		if err != nil {
			return nil, iv.gaveUp(name, out.Attempts, nil, err)
		}
		iv.inFlight.Add(1)
		iv.attempts.Add(1)
		out.Attempts++
		res, reqID, err := iv.send(ctx, in)
		iv.inFlight.Add(-1)
		iv.release(fs)
		if err == nil {
			out.Result, out.RequestId, out.Overruns = res, reqID, met429+met432
			iv.absorbed429.Add(int64(met429))
			iv.absorbed432.Add(int64(met432))
			return &out, nil
		}
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
			now := iv.clock.Now()
			wait = now.Truncate(time.Minute).Add(time.Minute).Sub(now) + rand.N(iv.retry.MinuteJitter)
		case isFE && fe.StatusCode == StatusResourceLimitReached:
			iv.met432.Add(1)
			met432++
			if iv.retry.MaxAttempts > 0 && out.Attempts >= iv.retry.MaxAttempts {
				return nil, iv.gaveUp(name, out.Attempts, err, nil)
			}
			wait = iv.backoff(&bo)
		case in.Idempotent && retryableWhenIdempotent(err, fe, isFE):
			execRuns++
			if execRuns >= iv.retry.ExecutionAttempts || (iv.retry.MaxAttempts > 0 && out.Attempts >= iv.retry.MaxAttempts) {
				return nil, iv.gaveUp(name, out.Attempts, err, nil)
			}
			iv.execRetries.Add(1)
			wait = iv.backoff(&bo)
		default:
			return nil, iv.gaveUp(name, out.Attempts, err, nil)
		}
		if iv.logger.Enabled(ctx, slog.LevelDebug) {
			iv.logger.LogAttrs(ctx, slog.LevelDebug, "scf invoker retrying", slog.String("function", name),
				slog.Int("attempt", out.Attempts), slog.Int("status", FunctionStatus(err)), slog.Duration("wait", wait))
		}
		iv.waiting.Add(1)
		serr := iv.clock.Sleep(ctx, wait)
		iv.waiting.Add(-1)
		if serr != nil {
			return nil, iv.gaveUp(name, out.Attempts, err, serr)
		}
	}
}

// retryableWhenIdempotent: execution and system failures, and transport
// failures that may have reached the server; never request errors or
// rejected input.
func retryableWhenIdempotent(err error, fe *FunctionError, isFE bool) bool {
	if isFE {
		c := fe.Class()
		return c == ClassExecution || c == ClassSystem
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.HTTPStatus >= 500 || apiErr.Code == CodeInternalError || strings.HasPrefix(apiErr.Code, "InternalError.")
	}
	var ve *ValidationError
	return !errors.As(err, &ve) // network errors
}

func (iv *Invoker) backoff(bo *backoff.BackOff) time.Duration {
	if *bo == nil {
		*bo = backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(iv.retry.MinWait),
			backoff.WithMaxInterval(iv.retry.MaxWait),
			backoff.WithMultiplier(2),
			backoff.WithRandomizationFactor(0.5),
			backoff.WithMaxElapsedTime(0),
		)
	}
	return min((*bo).NextBackOff(), iv.retry.MaxWait)
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
