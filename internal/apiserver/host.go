package apiserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/internal/credential"
)

// HostConfig is what the reference servers' shared options set: each of
// cartest's and scftest's With… options for these calls one of its
// methods, so the rule and the error are written once. The zero value is
// the defaults: 127.0.0.1:0, silent, DefaultLimits, a running clock, one
// random credential, the service's documented rate limits.
type HostConfig struct {
	listener    net.Listener
	logger      *slog.Logger
	limits      Limits
	manual      bool
	start       time.Time
	credentials []credential.Credential
	rates       map[string]int
	noRates     bool
}

// SetListener serves on l instead of a new listener on 127.0.0.1:0. When l
// has a method DialContext(ctx, network, addr string) (net.Conn, error), as
// internal/memnet's listener does, the client transport dials through it.
func (c *HostConfig) SetListener(l net.Listener) error {
	if l == nil {
		return errors.New("WithListener: the listener must not be nil")
	}
	c.listener = l
	return nil
}

// SetLogger logs calls and events at debug level, and internal errors.
func (c *HostConfig) SetLogger(l *slog.Logger) error {
	if l == nil {
		return errors.New("WithLogger: the logger must not be nil")
	}
	c.logger = l
	return nil
}

// SetLimits sets the server's limits; a zero field takes its default.
func (c *HostConfig) SetLimits(l Limits) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("WithLimits: %w", err)
	}
	c.limits = l
	return nil
}

// Limits returns the limits set (before defaults), for a service that
// chooses its own default of a field.
func (c *HostConfig) Limits() *Limits { return &c.limits }

// SetManualClock makes the model clock stand at start until advanced.
func (c *HostConfig) SetManualClock(start time.Time) error {
	if start.IsZero() {
		return errors.New("WithManualClock: start must not be zero")
	}
	c.manual, c.start = true, start
	return nil
}

// Manual reports whether the clock is manual.
func (c *HostConfig) Manual() bool { return c.manual }

// AddCredential lets in a key pair, temporary when token is not empty. The
// first one added is the one Host.Credentials returns.
func (c *HostConfig) AddCredential(secretID, secretKey, token string) error {
	switch {
	case secretID == "":
		return errors.New("credentials: the SecretId must not be empty")
	case secretKey == "":
		return errors.New("credentials: the SecretKey must not be empty")
	case strings.TrimSpace(secretID) != secretID:
		return errors.New("credentials: the SecretId must not have surrounding spaces")
	}
	for _, existing := range c.credentials {
		if existing.SecretId == secretID {
			return errors.New("credentials: a SecretId is given twice")
		}
	}
	c.credentials = append(c.credentials, credential.Credential{SecretId: secretID, SecretKey: secretKey, Token: token})
	return nil
}

// SetRateLimit sets one action's limit per second of host time; 0 removes
// it. An action the service does not have is refused by NewHost's caller
// (Host.ApplyRates).
func (c *HostConfig) SetRateLimit(action string, perSecond int) error {
	if perSecond < 0 {
		return fmt.Errorf("WithRateLimit(%s, %d): the limit must not be negative", action, perSecond)
	}
	if c.rates == nil {
		c.rates = make(map[string]int)
	}
	c.rates[action] = perSecond
	return nil
}

// RemoveRateLimits removes every limit; a later SetRateLimit sets one again.
func (c *HostConfig) RemoveRateLimits() {
	c.noRates = true
	clear(c.rates)
}

// Host is the shell of a reference server, shared by car/cartest and
// scf/scftest: the API frame (*Server: credentials, rate limits, faults,
// events), the model clock, the listener and http.Server, one client
// transport, and the context that ends when Close begins. The service
// around it holds its model and its own lock, serves the requests (its
// ServeHTTP hands API calls to the frame) and counts its handlers.
type Host struct {
	*Server // the API frame

	// URL is the base URL once started, e.g. "http://127.0.0.1:41234".
	URL string

	name      string // "cartest", for errors
	listener  net.Listener
	logger    *slog.Logger
	limits    Limits // defaults applied
	cred      credential.Credential
	rates     map[string]int
	noRates   bool
	transport *http.Transport
	ctx       context.Context
	cancel    context.CancelFunc

	mu       sync.Mutex
	started  bool
	closed   bool
	hs       *http.Server
	served   chan struct{}  // closed when Serve returns
	handlers sync.WaitGroup // every ServeHTTP of the service in progress (Enter/Leave)
	stopOnce sync.Once
}

// HostService names the service a Host serves.
type HostService struct {
	Name    string // the package, "cartest", for errors
	Service string // "car"
	Version string // "2022-01-10"
}

// NewHost returns a shell that does not listen yet. Without a credential
// in cfg it makes one random permanent pair ("AKID" and 32 letters and
// digits, a 32-character key).
func NewHost(svc HostService, cfg HostConfig) *Host {
	clk := clock.New()
	if cfg.manual {
		clk = clock.NewManual(cfg.start)
	}
	h := &Host{
		name: svc.Name, listener: cfg.listener, logger: cfg.logger, limits: cfg.limits.WithDefaults(),
		rates: cfg.rates, noRates: cfg.noRates,
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.Server = New(Config{Service: svc.Service, Version: svc.Version, Clock: clk, Logger: h.logger, Closing: h.ctx.Done(), Limits: h.limits})
	creds := cfg.credentials
	if len(creds) == 0 {
		creds = []credential.Credential{{SecretId: "AKID" + randomText(32), SecretKey: randomText(32)}}
	}
	for _, c := range creds {
		h.AddCredential(c.SecretId, c.SecretKey, c.Token)
	}
	h.cred = creds[0]
	dial := (&net.Dialer{}).DialContext
	if d, ok := cfg.listener.(interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}); ok {
		dial = d.DialContext
	}
	// The answers are small JSON, never compressed: as the SDKs' own
	// transport, no Accept-Encoding header for every request to send and
	// the server to parse.
	h.transport = &http.Transport{DialContext: dial, MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: clientIdle(h.limits),
		DisableCompression: true}
	return h
}

// ApplyRates sets the registered actions' rate limits: defaults (the
// service's documented ones; nil keeps what each Action was registered
// with), unless the config removed them all, then the config's own. A
// config naming an action the service does not have is an error.
func (h *Host) ApplyRates(defaults map[string]int) error {
	h.Server.mu.Lock()
	for name, a := range h.Server.actions {
		if r, ok := defaults[name]; ok {
			a.RatePerSecond = r
		}
		if h.noRates {
			a.RatePerSecond = 0
		}
	}
	h.Server.mu.Unlock()
	for name, r := range h.rates {
		if err := h.SetRateLimit(name, r); err != nil {
			return fmt.Errorf("WithRateLimit: %w", err)
		}
	}
	return nil
}

// Credentials returns the credential the service's Client signs with: the
// first one of the config, or the random pair. It prints redacted.
func (h *Host) Credentials() credential.Credential { return h.cred }

// Provider returns a provider of Credentials, with its token if it has one.
func (h *Host) Provider() credential.Provider {
	if h.cred.Token != "" {
		return credential.NewStaticToken(h.cred.SecretId, h.cred.SecretKey, h.cred.Token)
	}
	return credential.NewStatic(h.cred.SecretId, h.cred.SecretKey)
}

// Context ends when Close begins: the parent of work the service runs on
// its own.
func (h *Host) Context() context.Context { return h.ctx }

// Now returns the model time.
func (h *Host) Now() time.Time { return h.Clock().Now() }

// Logger returns the logger (silent by default).
func (h *Host) Logger() *slog.Logger { return h.logger }

// Limits returns the limits in force, defaults applied.
func (h *Host) Limits() Limits { return h.limits }

// Dial connects to the server as the client transport does: through the
// listener's DialContext when it has one.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return h.transport.DialContext(ctx, network, addr)
}

// HTTPClient returns an HTTP client on the one transport that Close
// closes: every client of the server shares its connections.
func (h *Host) HTTPClient() *http.Client { return &http.Client{Transport: h.transport} }

// Started reports whether Start has run.
func (h *Host) Started() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.started
}

// Start serves handler (the service) on the configured listener, or on a
// new one on 127.0.0.1:0, with the Limits' http.Server, and sets URL and
// *url (the service's URL field).
func (h *Host) Start(handler http.Handler, url *string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return fmt.Errorf("%s: Start after Close", h.name)
	case h.started:
		return fmt.Errorf("%s: the server is already started", h.name)
	}
	l := h.listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("%s: listening on 127.0.0.1: %w", h.name, err)
		}
		h.listener = l
	}
	h.started = true
	h.URL = "http://" + l.Addr().String()
	*url = h.URL
	ln := h.limits.Listener(l)
	h.hs = h.limits.HTTPServer(handler, h.logger, ln)
	h.served = make(chan struct{})
	go func() {
		defer close(h.served)
		h.hs.Serve(ln)
	}()
	return nil
}

// Enter admits one request to the service: it reports false, having
// answered 503, once Close has begun; otherwise the service calls Leave
// when it has answered. Close waits for every request admitted.
func (h *Host) Enter(w http.ResponseWriter) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		http.Error(w, h.name+": the reference server is closed", http.StatusServiceUnavailable)
		return false
	}
	h.handlers.Add(1)
	h.mu.Unlock()
	return true
}

// Leave ends a request Enter admitted.
func (h *Host) Leave() { h.handlers.Done() }

// Close stops the server, once, in this order:
//
//  1. stop runs: the service marks itself closed under its own lock, so
//     its model starts nothing more, and ends the work in flight it can
//     end at once (scftest fails its executions);
//  2. no request is admitted any more (Enter answers 503) and Context
//     ends, cutting injected delays short;
//  3. the http.Server closes and Serve returns (a listener given but never
//     served is closed instead);
//  4. drain runs: the service closes what the http.Server does not know
//     (cartest's hijacked streams) and waits for its own goroutines;
//  5. Close waits for every request admitted, closes the client
//     transport's idle connections and stops the model clock.
//
// Later calls return at once; stop and drain may be nil.
func (h *Host) Close(stop, drain func()) {
	h.stopOnce.Do(func() {
		if stop != nil {
			stop()
		}
		h.mu.Lock()
		h.closed = true
		hs, served, l := h.hs, h.served, h.listener
		h.mu.Unlock()
		h.cancel()
		if hs != nil {
			hs.Close()
			<-served
		} else if l != nil {
			l.Close()
		}
		if drain != nil {
			drain()
		}
		h.handlers.Wait()
		h.transport.CloseIdleConnections()
		h.Clock().Close()
	})
}

// Service is a reference server built on a Host, as NewServer and Start
// see it.
type Service interface {
	Start() error
	Close()
}

// StartService starts s, the result of a NewUnstartedServer: on an error
// it closes s and returns the error. It is NewServer's body.
func StartService[S Service](s S, err error) (S, error) {
	var zero S
	if err != nil {
		return zero, err
	}
	if err := s.Start(); err != nil {
		s.Close()
		return zero, err
	}
	return s, nil
}

// StartTest is Start(tb)'s body: it fails tb on err, and closes s when
// tb's test ends.
func StartTest[S Service](tb testing.TB, s S, err error) S {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// randomText returns n random letters and digits.
func randomText(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// clientIdle is how long the client transport keeps an idle connection:
// less than the server's IdleTimeout, so the client never sends a request
// on a connection the server is closing.
func clientIdle(l Limits) time.Duration {
	if l.IdleTimeout > 0 {
		return min(90*time.Second, l.IdleTimeout/2)
	}
	return 90 * time.Second
}
