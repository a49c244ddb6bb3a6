package cartest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/internal/credential"
)

// Server is a CAR reference server. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:41234", once it
	// has started; empty for a server that is only mounted as a handler.
	URL string

	host       *apiserver.Host // the shell: listener, transport, credentials, faults, events, clock
	api        *apiserver.Server
	clock      *clock.Clock
	streamPath string

	mu       sync.Mutex
	model    *model
	inflight map[string]struct{}      // UserIds with a call in progress
	streams  map[string]*serverStream // by id: the client streams open
	sessions sessionEncoder
	closed   bool // Close has begun: no stream attaches any more
}

// NewServer starts a reference server on 127.0.0.1:0, or on the listener
// of WithListener. Close it when done.
func NewServer(opts ...Option) (*Server, error) {
	return apiserver.StartService(NewUnstartedServer(opts...))
}

// Start starts a reference server, as NewServer does, fails tb if it
// cannot, and closes it when tb's test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := NewServer(opts...)
	return apiserver.StartTest(tb, s, err)
}

// NewUnstartedServer returns a server that does not listen yet: call Start,
// or serve it as an http.Handler, e.g. mounted in another mux. Either way,
// Close it when done: that also ends its client streams and its clock.
func NewUnstartedServer(opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	h := apiserver.NewHost(apiserver.HostService{Name: "cartest", Service: car.Service, Version: car.Version}, cfg.host)
	s := &Server{
		host:       h,
		api:        h.Server,
		clock:      h.Clock(),
		streamPath: cfg.streamPath,
		inflight:   make(map[string]struct{}),
		streams:    make(map[string]*serverStream),
	}
	s.model = newModel(cfg, s.clock.Now(), s.record)
	for _, a := range s.actions() {
		a.RatePerSecond = defaultRate(a.Name)
		s.api.Register(a)
	}
	if err := h.ApplyRates(nil); err != nil {
		h.Close(nil, nil)
		return nil, fmt.Errorf("cartest: %w", err)
	}
	return s, nil
}

// Start starts listening: on the WithListener listener, or on
// 127.0.0.1:0. It sets URL.
func (s *Server) Start() error { return s.host.Start(s, &s.URL) }

// Close stops the server: the listener, the API calls in progress, every
// client stream (each is told CloseServerClosed), the client transport and
// the clock. It waits for all of them and is safe to call more than once.
func (s *Server) Close() {
	var streams []*serverStream
	s.host.Close(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		for _, st := range s.streams {
			streams = append(streams, st)
		}
	}, func() {
		// http.Server.Close does not know hijacked connections: close them.
		for _, st := range streams {
			st.close(CloseServerClosed, reasonServerClosed)
		}
	})
}

// ServeHTTP serves the CAR API at every path but the stream path, where it
// serves the client stream. Mounted under a prefix that http.StripPrefix
// removes (as apiserver.Mux mounts /car/), the stream is still found by its
// full path, as given to WithStreamPath.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.host.Enter(w) {
		return
	}
	defer s.host.Leave()
	if s.isStream(r) {
		s.serveStream(w, r)
		return
	}
	s.api.ServeHTTP(w, r)
}

func (s *Server) isStream(r *http.Request) bool {
	if r.URL.Path == s.streamPath {
		return true
	}
	path, _, _ := strings.Cut(r.RequestURI, "?")
	return path == s.streamPath
}

// Format prints the server without its credentials, for every verb.
func (s *Server) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "cartest.Server{URL: %s, SecretId: %s}", s.URL, credential.MaskID(s.host.Credentials().SecretId))
}

// Credentials returns the credential Client signs with: the first one
// given to WithCredentials or WithTemporaryCredentials, or the random pair
// the server made. It prints redacted.
func (s *Server) Credentials() car.Credential { return s.host.Credentials() }

// HTTPClient returns an HTTP client on the server's one transport (the one
// Client uses, dialling through the WithListener listener when it can
// dial), which Close closes.
func (s *Server) HTTPClient() *http.Client { return s.host.HTTPClient() }

// Client returns a car.Client for this server: its URL, its credentials,
// and an HTTP client on the server's transport, which dials through the
// WithListener listener when it can dial. opts come after those, so they
// can replace them. Client panics if the server has not started or an
// option is invalid, as such mistakes are the test's.
func (s *Server) Client(opts ...car.Option) *car.Client {
	if !s.host.Started() {
		panic("cartest: Client needs a started server (NewServer, Start or Server.Start)")
	}
	all := append([]car.Option{
		car.WithEndpoint(s.URL),
		car.WithCredentials(s.host.Provider()),
		car.WithHTTPClient(s.host.HTTPClient()),
	}, opts...)
	c, err := car.NewClient(all...)
	if err != nil {
		panic("cartest: Client: " + err.Error())
	}
	return c
}

// Now returns the model time.
func (s *Server) Now() time.Time { return s.clock.Now() }

// Advance moves the model time forward by d (negative d is ignored) and
// applies every lock expiry, reconnect wait and cleanup that falls due, in
// due order. It works with the manual clock and the running one.
func (s *Server) Advance(d time.Duration) {
	s.clock.Advance(d)
	s.mu.Lock()
	s.model.settle(s.clock.Now())
	s.mu.Unlock()
}

// Fault replaces or delays the answers to the next calls of an action. It
// is the one Fault of the reference servers (scftest.Fault is the same
// type).
type Fault = apiserver.Fault

// InjectFault queues a fault for the next calls of action. Faults of one
// action apply in the order they were injected. For the per-user actions
// (all but DescribeConcurrentCount) an injected Latency is waited out
// while the call holds its user's place, so another call for that user
// answers FailedOperation.SlowDown meanwhile.
func (s *Server) InjectFault(action string, f Fault) error {
	if err := s.api.InjectFault(action, f); err != nil {
		return fmt.Errorf("cartest: InjectFault: %w", err)
	}
	return nil
}

// SetRateLimit changes an action's limit, in requests per second of host
// time, while the server runs; 0 removes it.
func (s *Server) SetRateLimit(action string, perSecond int) error {
	if err := s.api.SetRateLimit(action, perSecond); err != nil {
		return fmt.Errorf("cartest: SetRateLimit: %w", err)
	}
	return nil
}

// Events returns the event log in model-time order: every API call and
// every change of a concurrency's state, up to now.
func (s *Server) Events() []Event {
	s.settle()
	out := s.api.Events()
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out
}

// record writes a model event to the apiserver's log.
func (s *Server) record(e Event) { s.api.Record(e) }

// Concurrencies returns every concurrency, pack by pack, as of now.
func (s *Server) Concurrencies() []Concurrency {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.model.settle(s.clock.Now())
	var out []Concurrency
	for _, pk := range s.model.packs {
		for _, c := range pk.concs {
			out = append(out, s.model.snapshot(c))
		}
	}
	return out
}

// User returns the concurrency the user holds, as of now: locked, with a
// session, waiting for a reconnect, or being destroyed (Destroyed set). A
// user whose reconnect wait ran out holds nothing.
func (s *Server) User(userID string) (Concurrency, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.model.settle(s.clock.Now())
	c := s.model.holders[userID]
	if c == nil {
		return Concurrency{}, false
	}
	return s.model.snapshot(c), true
}

// ExpireHeartbeat makes the server give up on the user's connected client
// stream as if its heartbeats had stopped: the stream is closed with
// CloseHeartbeatTimeout and the concurrency waits for a reconnect.
func (s *Server) ExpireHeartbeat(userID string) error {
	s.mu.Lock()
	now := s.clock.Now()
	s.model.settle(now)
	c := s.model.holders[userID]
	if c == nil || c.stream == nil {
		s.mu.Unlock()
		return fmt.Errorf("cartest: ExpireHeartbeat: UserId %q has no connected client stream", clip(userID))
	}
	st := c.stream
	s.model.disconnect(now, st, "heartbeat timeout: the server closed the stream")
	s.mu.Unlock()
	st.close(CloseHeartbeatTimeout, reasonHeartbeat)
	return nil
}

func (s *Server) settle() {
	s.mu.Lock()
	s.model.settle(s.clock.Now())
	s.mu.Unlock()
}
