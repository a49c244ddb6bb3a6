package cartest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

	api        *apiserver.Server
	clock      *clock.Clock
	logger     *slog.Logger
	streamPath string
	cred       car.Credential
	listener   net.Listener
	limits     Limits
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc

	mu       sync.Mutex
	model    *model
	inflight map[string]struct{}      // UserIds with a call in progress
	streams  map[string]*serverStream // by id: the client streams open
	sessions sessionEncoder
	started  bool
	closed   bool
	work     sync.WaitGroup // every handler, API and stream, in progress

	httpServer *http.Server
	served     chan struct{} // closed when Serve returns
	transport  *http.Transport
}

// NewServer starts a reference server on 127.0.0.1:0, or on the listener
// of WithListener. Close it when done.
func NewServer(opts ...Option) (*Server, error) {
	s, err := NewUnstartedServer(opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Start starts a reference server, as NewServer does, fails tb if it
// cannot, and closes it when tb's test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := NewServer(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// NewUnstartedServer returns a server that does not listen yet: call Start,
// or serve it as an http.Handler, e.g. mounted in another mux. Either way,
// Close it when done: that also ends its client streams and its clock.
func NewUnstartedServer(opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		clock:      cfg.newClock(),
		logger:     cfg.logger,
		streamPath: cfg.streamPath,
		listener:   cfg.listener,
		inflight:   make(map[string]struct{}),
		streams:    make(map[string]*serverStream),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if d, ok := cfg.listener.(interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}); ok {
		s.dial = d.DialContext
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.limits = cfg.limits.WithDefaults()
	s.api = apiserver.New(apiserver.Config{Service: car.Service, Version: car.Version, Clock: s.clock, Logger: s.logger, Closing: s.ctx.Done(), Limits: s.limits})
	s.model = newModel(cfg, s.clock.Now(), s.record)
	for _, a := range s.actions() {
		a.RatePerSecond = defaultRate(a.Name)
		if cfg.noRates {
			a.RatePerSecond = 0
		}
		if r, ok := cfg.rates[a.Name]; ok {
			a.RatePerSecond = r
		}
		s.api.Register(a)
	}
	if len(cfg.credentials) == 0 {
		cfg.credentials = []credentialSpec{{id: "AKID" + randomText(32), key: randomText(32)}}
	}
	for _, c := range cfg.credentials {
		s.api.AddCredential(c.id, c.key, c.token)
	}
	first := cfg.credentials[0]
	s.cred = car.Credential{SecretId: first.id, SecretKey: first.key, Token: first.token}
	return s, nil
}

// Start starts listening: on the WithListener listener, or on
// 127.0.0.1:0. It sets URL.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("cartest: Start after Close")
	case s.started:
		return errors.New("cartest: the server is already started")
	}
	l := s.listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("cartest: listening on 127.0.0.1: %w", err)
		}
		s.listener = l
	}
	s.started = true
	s.URL = "http://" + l.Addr().String()
	dial := s.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	s.transport = &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 64, IdleConnTimeout: clientIdle(s.limits)}
	ln := s.limits.Listener(l)
	s.httpServer = s.limits.HTTPServer(s, s.logger, ln)
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		s.httpServer.Serve(ln)
	}()
	return nil
}

// Close stops the server: the listener, the API calls in progress, every
// client stream (each is told CloseServerClosed) and the clock. It waits
// for all of them and is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	streams := make([]*serverStream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()

	s.cancel()
	if s.httpServer != nil {
		s.httpServer.Close()
		<-s.served
	} else if s.listener != nil {
		s.listener.Close() // given, never started
	}
	// http.Server.Close does not know hijacked connections: close them.
	for _, st := range streams {
		st.close(CloseServerClosed, reasonServerClosed)
	}
	s.work.Wait()
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	s.clock.Close()
}

// ServeHTTP serves the CAR API at every path but the stream path, where it
// serves the client stream. Mounted under a prefix that http.StripPrefix
// removes (as apiserver.Mux mounts /car/), the stream is still found by its
// full path, as given to WithStreamPath.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "cartest: the reference server is closed", http.StatusServiceUnavailable)
		return
	}
	s.work.Add(1)
	s.mu.Unlock()
	defer s.work.Done()
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
	fmt.Fprintf(f, "cartest.Server{URL: %s, SecretId: %s}", s.URL, credential.MaskID(s.cred.SecretId))
}

// Credentials returns the credential Client signs with: the first one
// given to WithCredentials or WithTemporaryCredentials, or the random pair
// the server made. It prints redacted.
func (s *Server) Credentials() car.Credential { return s.cred }

// Client returns a car.Client for this server: its URL, its credentials,
// and an HTTP client that dials through the WithListener listener when it
// can dial. opts come after those, so they can replace them. Client panics
// if the server has not started or an option is invalid, as such mistakes
// are the test's.
func (s *Server) Client(opts ...car.Option) *car.Client {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		panic("cartest: Client needs a started server (NewServer, Start or Server.Start)")
	}
	var provider car.CredentialProvider
	if s.cred.Token != "" {
		provider = car.TokenCredentials(s.cred.SecretId, s.cred.SecretKey, s.cred.Token)
	} else {
		provider = car.StaticCredentials(s.cred.SecretId, s.cred.SecretKey)
	}
	all := append([]car.Option{
		car.WithEndpoint(s.URL),
		car.WithCredentials(provider),
		car.WithHTTPClient(&http.Client{Transport: s.transport}),
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

// Fault replaces or delays the answers to the next calls of an action.
type Fault struct {
	// Latency delays the answer (host time, ending early if the client
	// goes away). For the per-user actions (all but
	// DescribeConcurrentCount) the call waits while it holds its user's
	// place, so another call for that user answers
	// FailedOperation.SlowDown meanwhile.
	Latency time.Duration
	// Code, when set, is answered as an API error, with Message, instead
	// of calling the action; HTTPStatus, if set, replaces 200.
	Code       string
	Message    string
	HTTPStatus int
	// Drop closes the connection without an answer, after Latency.
	Drop bool
	// DropAnswer carries the action out, then closes the connection
	// without an answer: a response lost after CAR acted.
	DropAnswer bool
	// Times is how many calls the fault applies to; 0 means 1.
	Times int
}

// InjectFault queues a fault for the next calls of action. Faults of one
// action apply in the order they were injected.
func (s *Server) InjectFault(action string, f Fault) error {
	err := s.api.InjectFault(action, apiserver.Fault{
		Latency: f.Latency, Code: f.Code, Message: f.Message, HTTPStatus: f.HTTPStatus, Drop: f.Drop, DropAnswer: f.DropAnswer, Times: f.Times,
	})
	if err != nil {
		return fmt.Errorf("cartest: InjectFault: %w", err)
	}
	return nil
}

// Events returns the event log in model-time order: every API call and
// every change of a concurrency's state, up to now.
func (s *Server) Events() []Event {
	s.settle()
	raw := s.api.Events()
	out := make([]Event, len(raw))
	for i, e := range raw {
		out[i] = Event{
			Time: e.Time, Kind: EventKind(e.Kind), Action: e.Action, RequestId: e.RequestId, Code: e.Code,
			UserId: e.Subject, ConcurrencyId: e.Resource, Detail: e.Detail,
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out
}

// record writes a model event to the apiserver's log.
func (s *Server) record(e Event) {
	s.api.Record(apiserver.Event{
		Time: e.Time, Kind: string(e.Kind), Action: e.Action, RequestId: e.RequestId,
		Subject: e.UserId, Resource: e.ConcurrencyId, Detail: e.Detail,
	})
}

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

// clientIdle is how long Client's transport keeps an idle connection:
// less than the server's IdleTimeout, so the client never sends a request
// on a connection the server is closing.
func clientIdle(l Limits) time.Duration {
	if l.IdleTimeout > 0 {
		return min(90*time.Second, l.IdleTimeout/2)
	}
	return 90 * time.Second
}
