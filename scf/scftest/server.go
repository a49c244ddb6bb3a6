package scftest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/internal/credential"
	"github.com/tcconcurrency/sdk-go/scf"
)

// SecretID and SecretKey are a fixed pair for tools that need one known
// in advance: a server accepts them only when given them,
// WithCredentials(SecretID, SecretKey).
//
// Deprecated: a server's default credential is random, as cartest's is;
// read it with Server.Credentials.
const (
	SecretID  = "AKIDscftest00000000000000000000000000"
	SecretKey = "scftest-secret-key-000000000000000"
)

// Defaults of the model.
const (
	// DefaultIdleRetention is how long an idle elastic instance is kept
	// for reuse. SCF's is dynamic and undocumented; 10 minutes is the
	// keep-alive LocalStack uses for Lambda.
	DefaultIdleRetention = 10 * time.Minute
	// DefaultAsyncQueueLimit is the documented size of a function's
	// asynchronous queue.
	DefaultAsyncQueueLimit = 100000
	// DefaultRequestRecords is how many executions GetRequestStatus
	// remembers, the oldest forgotten first.
	DefaultRequestRecords = 100000
	// FunctionsPerNamespace is the documented function limit.
	FunctionsPerNamespace = 50
	// DefaultColdStart is the model time a new instance takes before it
	// runs its first request (WithColdStart, FunctionConfig.ColdStart).
	// The documents say new instances "need to be initialized" and bound
	// that by InitTimeout (default 65 s) without giving a typical time;
	// 1 s is a round figure well inside the bound and large beside a
	// warm request, so what provisioned instances save shows.
	DefaultColdStart = time.Second
	// NoColdStart, as FunctionConfig.ColdStart, gives a function instances
	// that start at once.
	NoColdStart time.Duration = -1
)

// defaultRates are the documented rate limits of the actions, per second
// (the Delete and GetProvisioned actions share the 20/s of their Put).
func defaultRates() map[string]int {
	return map[string]int{
		"PutReservedConcurrencyConfig": 20, "GetReservedConcurrencyConfig": 20, "DeleteReservedConcurrencyConfig": 20,
		"PutProvisionedConcurrencyConfig": 20, "GetProvisionedConcurrencyConfig": 20, "DeleteProvisionedConcurrencyConfig": 20,
		"PutTotalConcurrencyConfig": 20, "Invoke": 100, "InvokeFunction": 10000,
	}
}

// Option configures a Server.
type Option func(*config) error

type config struct {
	shell         apiserver.HostConfig // the shell's options: listener, credentials, clock, rates, logger, limits
	region        string
	quotaMB       int64            // of the default region; 0: its documented quota
	quotas        map[string]int64 // WithRegionQuota
	burst         int
	provisionRate int
	retention     time.Duration
	coldStart     time.Duration
	queueLimit    int
	maxRecords    int
	seed          uint64
}

// WithManualClock makes the model clock stand at start until
// Server.Advance moves it. The default clock runs in real time (inside a
// testing/synctest bubble, the bubble's time).
func WithManualClock(start time.Time) Option {
	return func(c *config) error { return c.shell.SetManualClock(start) }
}

// WithRegion sets the default region (DefaultRegion, ap-guangzhou): the
// one Client sends, and the one AddFunction, SetHandler, Instances,
// QueueLength and FunctionURL mean when a function's name does not say.
func WithRegion(region string) Option {
	return func(c *config) error {
		if err := checkRegion("WithRegion", region); err != nil {
			return err
		}
		c.region = region
		return nil
	}
}

// WithAccountQuota sets the concurrency quota in MB of the default
// region's account (by default the region's documented quota:
// scf.RegionQuotaMB). At least 12,800.
func WithAccountQuota(mb int64) Option {
	return func(c *config) error {
		if mb < scf.UnreservableMB {
			return fmt.Errorf("WithAccountQuota: %d MB must be at least 12800", mb)
		}
		c.quotaMB = mb
		return nil
	}
}

// WithRegionQuota sets the concurrency quota in MB of one region's
// account (a raised quota, say). At least 12,800.
func WithRegionQuota(region string, mb int64) Option {
	return func(c *config) error {
		if err := checkRegion("WithRegionQuota", region); err != nil {
			return err
		}
		if mb < scf.UnreservableMB {
			return fmt.Errorf("WithRegionQuota: %d MB must be at least 12800", mb)
		}
		c.quotas[region] = mb
		return nil
	}
}

// WithScaleOutRate sets how many new elastic instances each region's
// account may start in any 60 s (default 500); 0 removes the limit.
func WithScaleOutRate(perMinute int) Option {
	return func(c *config) error {
		if perMinute < 0 {
			return errors.New("WithScaleOutRate: must not be negative")
		}
		c.burst = perMinute
		return nil
	}
}

// WithProvisionRate sets how many provisioned instances start per minute
// (default 100).
func WithProvisionRate(perMinute int) Option {
	return func(c *config) error {
		if perMinute < 1 {
			return errors.New("WithProvisionRate: must be at least 1")
		}
		c.provisionRate = perMinute
		return nil
	}
}

// WithIdleRetention sets how long an idle elastic instance is kept for
// reuse (default DefaultIdleRetention).
func WithIdleRetention(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("WithIdleRetention: must be positive")
		}
		c.retention = d
		return nil
	}
}

// WithColdStart sets the model time a new elastic instance takes before
// it runs its first request (default DefaultColdStart, 1 s); 0 makes cold
// starts free. A function may set its own (FunctionConfig.ColdStart, the
// SCFTEST_COLD_START variable).
func WithColdStart(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errors.New("WithColdStart: must not be negative")
		}
		c.coldStart = d
		return nil
	}
}

// WithAsyncQueueLimit sets how many events a function's asynchronous queue
// holds (default 100,000); beyond it Invoke fails with
// FailedOperation.InvokeFunction.
func WithAsyncQueueLimit(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("WithAsyncQueueLimit: must be at least 1")
		}
		c.queueLimit = n
		return nil
	}
}

// WithRateLimit sets the limit of one action, in requests per second of
// host time; 0 removes it. The defaults are SCF's documented ones (20/s
// for the concurrency configuration actions, 100/s for Invoke, 10,000/s
// for InvokeFunction).
func WithRateLimit(action string, perSecond int) Option {
	return func(c *config) error { return c.shell.SetRateLimit(action, perSecond) }
}

// WithoutRateLimits removes every rate limit, for load tests. A later
// WithRateLimit sets one again.
func WithoutRateLimits() Option {
	return func(c *config) error {
		c.shell.RemoveRateLimits()
		return nil
	}
}

// WithCredentials lets in a permanent key pair. Without a credential option
// the server makes a random pair. With several, every one is accepted and
// the first one given is the one Credentials and Client use.
func WithCredentials(secretID, secretKey string) Option {
	return WithTemporaryCredentials(secretID, secretKey, "")
}

// WithTemporaryCredentials lets in a temporary key pair: its requests must
// carry token in X-TC-Token (AuthFailure.TokenFailure otherwise).
func WithTemporaryCredentials(secretID, secretKey, token string) Option {
	return func(c *config) error { return c.shell.AddCredential(secretID, secretKey, token) }
}

// WithCredential is WithTemporaryCredentials, or WithCredentials for an
// empty token.
//
// Deprecated: use WithCredentials or WithTemporaryCredentials, the
// spelling cartest has too.
func WithCredential(secretID, secretKey, token string) Option {
	return WithTemporaryCredentials(secretID, secretKey, token)
}

// WithListener serves on l instead of a new 127.0.0.1 port. A listener
// with a DialContext method (internal/memnet's, for testing/synctest)
// makes Server.Client dial through it.
func WithListener(l net.Listener) Option {
	return func(c *config) error { return c.shell.SetListener(l) }
}

// WithLogger sets a logger for the event log and internal errors; the
// default is silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { return c.shell.SetLogger(l) }
}

// Limits bound what clients can make the server spend: the http.Server's
// timeouts, a cap on connections, and the bytes of large request bodies
// read at once. A zero field takes its default: apiserver.DefaultLimits
// (read header 10 s, read 1 min, idle 1 min, 4,096 connections, 64 MB of
// large bodies waiting at most 10 s), but a write timeout of
// DefaultWriteTimeout, so that the longest synchronous execution is
// answered, and none with WithManualClock, where a synchronous call waits
// for Advance whatever host time passes. A negative field turns that
// limit off.
type Limits = apiserver.Limits

// DefaultWriteTimeout is scftest's default Limits.WriteTimeout: above the
// longest function Timeout (900 s).
const DefaultWriteTimeout = 16 * time.Minute

// WithLimits sets the server's limits (see Limits).
func WithLimits(l Limits) Option {
	return func(c *config) error { return c.shell.SetLimits(l) }
}

// WithSeed seeds the random choices (alias weights); the default seed is
// fixed, so runs repeat.
func WithSeed(seed uint64) Option {
	return func(c *config) error {
		c.seed = seed
		return nil
	}
}

// Server is an in-process SCF reference server. It is an http.Handler:
// API calls go to the API (with signature checks, rate limits, faults and
// envelopes), and paths under /http/ reach HTTP functions. All methods are
// safe for concurrent use.
type Server struct {
	// URL is the base URL, e.g. "http://127.0.0.1:41234"; empty until
	// the server is started.
	URL string

	cfg     config
	shell   *apiserver.Host // listener, transport, credentials, faults, events, clock
	api     *apiserver.Server
	clock   *clock.Clock
	baseCtx context.Context // the shell's: ends when Close begins
	wg      sync.WaitGroup  // the executions' goroutines

	mu     sync.Mutex
	closed bool
	model  *model // guarded by mu
}

// NewUnstartedServer returns a server that does not listen yet: mount it
// as an http.Handler (it is one), or call Start.
func NewUnstartedServer(opts ...Option) (*Server, error) {
	cfg := config{
		region: DefaultRegion, quotas: map[string]int64{}, burst: scf.ScaleOutPerMinute, provisionRate: scf.ProvisionPerMinute,
		retention: DefaultIdleRetention, coldStart: DefaultColdStart, queueLimit: DefaultAsyncQueueLimit,
		maxRecords: DefaultRequestRecords, seed: 1,
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("scftest: %w", err)
		}
	}
	if cfg.quotaMB != 0 {
		cfg.quotas[cfg.region] = cfg.quotaMB
	}
	if l := cfg.shell.Limits(); l.WriteTimeout == 0 {
		l.WriteTimeout = DefaultWriteTimeout
		if cfg.shell.Manual() {
			l.WriteTimeout = -1 // host time says nothing of how long an execution takes
		}
	}
	h := apiserver.NewHost(apiserver.HostService{Name: "scftest", Service: scf.Service, Version: scf.Version}, cfg.shell)
	cfg.shell = apiserver.HostConfig{} // the secrets live in the verifier only, never in a printable field
	s := &Server{cfg: cfg, shell: h, api: h.Server, clock: h.Clock(), baseCtx: h.Context()}
	s.model = newModel(&cfg, s.host())
	s.register()
	if err := h.ApplyRates(defaultRates()); err != nil {
		h.Close(nil, nil)
		return nil, fmt.Errorf("scftest: %w", err)
	}
	return s, nil
}

// NewServer returns a started server.
func NewServer(opts ...Option) (*Server, error) {
	return apiserver.StartService(NewUnstartedServer(opts...))
}

// Start begins serving on the listener of WithListener, or a new
// 127.0.0.1 port. It sets URL.
func (s *Server) Start() error { return s.shell.Start(s, &s.URL) }

// Start returns a started server that t's cleanup closes; it fails the
// test if the server cannot start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(opts...)
	return apiserver.StartTest(t, s, err)
}

// Close stops the server: executions in flight fail with 500, handlers'
// contexts end, the listener closes, and Close waits for their goroutines,
// then closes the client transport and stops the model clock. It is
// idempotent.
func (s *Server) Close() {
	s.shell.Close(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		s.model.close()
	}, s.wg.Wait)
}

// Client returns a client of this server, signed with Credentials, for
// the default region (scf.WithRegion), on the server's one transport
// (which Close closes); opts come after the server's own and may override
// them.
func (s *Server) Client(opts ...scf.Option) *scf.Client {
	base := []scf.Option{
		scf.WithEndpoint(s.URL), scf.WithCredentials(s.shell.Provider()),
		scf.WithHTTPClient(s.shell.HTTPClient()), scf.WithRegion(s.cfg.region),
	}
	c, err := scf.NewClient(append(base, opts...)...)
	if err != nil {
		panic("scftest: Client: " + err.Error()) // only a bad option of the caller's can fail
	}
	return c
}

// HTTPClient returns an HTTP client that reaches the server (through its
// listener's DialContext when it has one), e.g. for FunctionURL. It shares
// the server's one transport, which Close closes.
func (s *Server) HTTPClient() *http.Client { return s.shell.HTTPClient() }

// Credentials returns the credential Client signs with: the first one
// given to WithCredentials or WithTemporaryCredentials, or the random pair
// the server made. It prints redacted.
func (s *Server) Credentials() scf.Credential { return s.shell.Credentials() }

// Format prints the server without its credentials, for every verb.
func (s *Server) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "scftest.Server{URL: %s, SecretId: %s}", s.URL, credential.MaskID(s.shell.Credentials().SecretId))
}

// ServeHTTP answers API calls, and HTTP-function requests under /http/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.shell.Enter(w) {
		return
	}
	defer s.shell.Leave()
	if strings.HasPrefix(r.URL.Path, triggerPrefix) || strings.HasPrefix(r.URL.Path, regionsPrefix) {
		s.serveFunction(w, r)
		return
	}
	s.api.ServeHTTP(w, r)
}

// Clock returns the model clock, e.g. for scf.WithInvokerClock or
// scf.WithWaitClock, so that client-side waits follow the server's time.
func (s *Server) Clock() scf.Clock { return s.clock }

// Now returns the model time.
func (s *Server) Now() time.Time { return s.clock.Now() }

// Advance moves the model time forward by d, running every timer that
// falls due (provisioning steps, retention, retries, time limits).
func (s *Server) Advance(d time.Duration) { s.clock.Advance(d) }

// Fault replaces or delays the answer to the next calls of an action. It
// is the one Fault of the reference servers (cartest.Fault is the same
// type).
type Fault = apiserver.Fault

// Event is one entry of the event log: API calls (Kind "call"), instances
// starting and stopping ("instance"), executions ("invoke"), the
// asynchronous queue ("async"), provisioning ("provisioned") and function
// configuration ("config"). It is the one event type of both reference
// servers (cartest.Event is the same type). For scftest's model events,
// Subject is the function version ("namespace/name:qualifier") and
// Resource the instance, if one is concerned.
type Event = apiserver.Event

// EventKind names an entry of the event log (cartest.EventKind is the same
// type).
type EventKind = apiserver.EventKind

// InjectFault queues a fault for the next calls of action. Faults of one
// action apply in the order they were injected.
func (s *Server) InjectFault(action string, f Fault) error {
	if err := s.api.InjectFault(action, f); err != nil {
		return fmt.Errorf("scftest: InjectFault: %w", err)
	}
	return nil
}

// Events returns a copy of the event log.
func (s *Server) Events() []Event { return s.api.Events() }

// SetRateLimit changes an action's limit, in requests per second of host
// time, while the server runs; 0 removes it.
func (s *Server) SetRateLimit(action string, perSecond int) error {
	if err := s.api.SetRateLimit(action, perSecond); err != nil {
		return fmt.Errorf("scftest: SetRateLimit: %w", err)
	}
	return nil
}

// AddCredential lets another SecretId in while the server runs; a
// non-empty token makes it temporary. Credentials and Client keep theirs.
func (s *Server) AddCredential(secretID, secretKey, token string) {
	s.api.AddCredential(secretID, secretKey, token)
}

// Counters are the server's totals since it started.
type Counters struct {
	// Invocations counts executions started (synchronous calls and
	// asynchronous attempts that got an instance).
	Invocations int64
	// Succeeded and Failed count the outcomes of executions and of
	// rejected requests (429, 432, 442).
	Succeeded, Failed int64
	// ByStatus counts every outcome by status code, 200 included.
	ByStatus map[int]int64
	// ElasticStarts and ProvisionedStarts count the instances started;
	// InstancesStopped those recycled.
	ElasticStarts, ProvisionedStarts, InstancesStopped int64
	// Throttled429 and Throttled432 count the overruns.
	Throttled429, Throttled432 int64
	// AsyncQueued counts accepted events; AsyncRetries their retries
	// (overruns included); AsyncDropped those given up.
	AsyncQueued, AsyncRetries, AsyncDropped int64
}

// Counters returns a copy of the counters.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.model.counters
	c.ByStatus = make(map[int]int64, len(s.model.counters.ByStatus))
	for k, v := range s.model.counters.ByStatus {
		c.ByStatus[k] = v
	}
	if c.Succeeded > 0 { // counted once, not in the map too, on every success
		c.ByStatus[scf.StatusSuccess] = c.Succeeded
	}
	return c
}

// InstanceState is what an instance is doing.
type InstanceState string

// Instance states.
const (
	StateBusy        InstanceState = "busy"        // running at least one request
	StateIdle        InstanceState = "idle"        // an elastic instance kept for reuse
	StateProvisioned InstanceState = "provisioned" // a provisioned instance waiting for requests
)

// Instance describes one instance.
type Instance struct {
	ID           string
	Region       string
	FunctionName string
	Namespace    string
	Qualifier    string // the version it runs
	State        InstanceState
	Provisioned  bool
	InFlight     int   // requests running on it
	MemorySizeMB int64 // its memory
	StartedAt    time.Time
	LastUsed     time.Time
}

// Instances lists the instances of a function ("name",
// "namespace/name" or "region/namespace/name"), or of every function of
// every region for "", oldest first.
func (s *Server) Instances(function string) []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Instance
	want := s.model.find(function)
	for _, fn := range s.model.allFunctions() {
		if function != "" && fn != want {
			continue
		}
		for _, inst := range fn.instances {
			state := StateIdle
			switch {
			case len(inst.execs) > 0:
				state = StateBusy
			case inst.provisioned:
				state = StateProvisioned
			}
			out = append(out, Instance{
				ID: inst.id, Region: fn.acct.region, FunctionName: fn.name, Namespace: fn.ns, Qualifier: inst.ver.name, State: state,
				Provisioned: inst.provisioned, InFlight: len(inst.execs), MemorySizeMB: inst.memMB,
				StartedAt: inst.started, LastUsed: inst.lastUsed,
			})
		}
	}
	return out
}

// QueueLength returns how many events wait in a function's asynchronous
// queue (retries waiting for their time not included).
func (s *Server) QueueLength(function string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fn := s.model.find(function); fn != nil {
		return len(fn.queue)
	}
	return 0
}

// SetHandler attaches Go code to a function ("name" or "namespace/name"):
// every version runs it (Invocation.Qualifier tells them apart). It
// replaces a declarative behaviour.
func (s *Server) SetHandler(function string, h Handler) error {
	if h == nil {
		return errors.New("scftest: SetHandler: handler must not be nil")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn := s.model.find(function)
	if fn == nil {
		return fmt.Errorf("scftest: SetHandler: no function %q", function)
	}
	fn.handler = h
	return nil
}

// SetBehavior gives a function a declarative behaviour.
func (s *Server) SetBehavior(function string, b Behavior) error {
	if err := b.check(); err != nil {
		return fmt.Errorf("scftest: SetBehavior: %w", err)
	}
	return s.SetHandler(function, b.Handler())
}

// FunctionConfig describes a function for AddFunction.
type FunctionConfig struct {
	Name      string // Required.
	Namespace string // default "default"
	// Region defaults to the server's default region (WithRegion).
	Region string
	// MemorySizeMB defaults to 128; Timeout to 3 s (whole seconds, 1–900).
	MemorySizeMB int64
	Timeout      time.Duration
	// Type is scf.FunctionTypeEvent (default) or scf.FunctionTypeHTTP.
	Type string
	// MaxConcurrency is the requests per instance of an HTTP function:
	// 2–100 runs that many at once; 0 and 1 mean one (multi-concurrency
	// off, as the API reads MaxConcurrency 1).
	MaxConcurrency uint64
	// ColdStart is the model time a new instance of the function takes
	// before its first request: 0 means the server's (WithColdStart,
	// DefaultColdStart), NoColdStart none.
	ColdStart time.Duration
	// Handler is the function's code; nil means its Behavior, and a zero
	// Behavior means returning the event.
	Handler  Handler
	Behavior *Behavior
}

// AddFunction creates a function as CreateFunction does, for test setup.
func (s *Server) AddFunction(fc FunctionConfig) error {
	in := createFunctionIn{FunctionName: fc.Name, Namespace: fc.Namespace, Type: fc.Type}
	if fc.MemorySizeMB != 0 {
		in.MemorySize = &fc.MemorySizeMB
	}
	if fc.Timeout != 0 {
		secs := int64(fc.Timeout / time.Second)
		if time.Duration(secs)*time.Second != fc.Timeout {
			return fmt.Errorf("scftest: AddFunction: Timeout %v must be whole seconds", fc.Timeout)
		}
		in.Timeout = &secs
	}
	if fc.MaxConcurrency != 0 {
		in.InstanceConcurrencyConfig = &wireInstanceConcurrency{DynamicEnabled: scf.EnableFalse, MaxConcurrency: &fc.MaxConcurrency}
	}
	if fc.ColdStart < 0 && fc.ColdStart != NoColdStart {
		return fmt.Errorf("scftest: AddFunction: ColdStart %v must be 0 or more, or NoColdStart", fc.ColdStart)
	}
	region := fc.Region
	if region == "" {
		region = s.cfg.region
	}
	a := s.model.accounts[region]
	if a == nil {
		return fmt.Errorf("scftest: AddFunction: %w", checkRegion("Region", region))
	}
	h := fc.Handler
	if h == nil && fc.Behavior != nil {
		if err := fc.Behavior.check(); err != nil {
			return fmt.Errorf("scftest: AddFunction: %w", err)
		}
		h = fc.Behavior.Handler()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, apiErr := s.createLocked(a, &in)
	if apiErr != nil {
		return fmt.Errorf("scftest: AddFunction: %s: %s", apiErr.Code, apiErr.Message)
	}
	fn.handler = h
	if fc.ColdStart != 0 {
		cfg := &fn.versions[scf.QualifierLatest].cfg
		cfg.coldStart, cfg.coldStartSet = max(fc.ColdStart, 0), true
	}
	return nil
}

// FunctionURL is the URL of an HTTP function ("name", "namespace/name" or
// "region/namespace/name"); requests to it, and below it, run the
// function's $DEFAULT alias. In the default region it is
// <URL>/http/<namespace>/<name>, in another
// <URL>/regions/<region>/http/<namespace>/<name>.
func (s *Server) FunctionURL(function string) string {
	region, key := s.model.parseFunction(function)
	if region == s.cfg.region {
		return s.URL + triggerPrefix + key
	}
	return s.URL + regionsPrefix + region + triggerPrefix + key
}
