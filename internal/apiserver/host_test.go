package apiserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

var demo = HostService{Name: "demotest", Service: "demo", Version: "2020-01-01"}

// TestHostCredentials: without a credential the shell makes a random pair,
// a different one per server; the first one given is the one it reports.
func TestHostCredentials(t *testing.T) {
	a, b := NewHost(demo, HostConfig{}), NewHost(demo, HostConfig{})
	defer a.Close(nil, nil)
	defer b.Close(nil, nil)
	ca, cb := a.Credentials(), b.Credentials()
	if !strings.HasPrefix(ca.SecretId, "AKID") || len(ca.SecretId) != 36 || len(ca.SecretKey) != 32 || ca.Token != "" {
		t.Fatalf("random credential has the wrong shape (id %d chars, key %d chars)", len(ca.SecretId), len(ca.SecretKey))
	}
	if ca.SecretId == cb.SecretId || ca.SecretKey == cb.SecretKey {
		t.Fatal("two servers made the same credential")
	}
	var cfg HostConfig
	if err := cfg.AddCredential("AKIDone", "k1", "tok"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.AddCredential("AKIDtwo", "k2", ""); err != nil {
		t.Fatal(err)
	}
	h := NewHost(demo, cfg)
	defer h.Close(nil, nil)
	if c := h.Credentials(); c.SecretId != "AKIDone" || c.Token != "tok" {
		t.Fatalf("Credentials = %v; want the first one given", c)
	}
	if got, err := h.Provider().Credential(t.Context()); err != nil || got != h.Credentials() {
		t.Fatalf("Provider gives %v, %v", got, err)
	}
	for _, id := range []string{"AKIDone", "AKIDtwo"} {
		if _, ok := h.verifier.Lookup(id); !ok {
			t.Errorf("%s is not let in", id)
		}
	}
}

func TestHostConfigRefusesBadValues(t *testing.T) {
	var cfg HostConfig
	for _, tc := range []struct {
		err  error
		want string
	}{
		{cfg.SetListener(nil), "listener must not be nil"},
		{cfg.SetLogger(nil), "logger must not be nil"},
		{cfg.SetManualClock(time.Time{}), "start must not be zero"},
		{cfg.SetLimits(Limits{BodyBytesInFlight: 1 << 20}), "BodyBytesInFlight"},
		{cfg.SetRateLimit("Echo", -1), "must not be negative"},
		{cfg.AddCredential("", "k", ""), "SecretId must not be empty"},
		{cfg.AddCredential("id", "", ""), "SecretKey must not be empty"},
		{cfg.AddCredential(" id", "k", ""), "surrounding spaces"},
		{func() error { cfg.AddCredential("twice", "k", ""); return cfg.AddCredential("twice", "k2", "") }(), "given twice"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v; want one saying %q", tc.err, tc.want)
		}
	}
	if cfg.listener != nil || cfg.logger != nil || cfg.manual || len(cfg.rates) != 0 || len(cfg.credentials) != 1 {
		t.Fatalf("a refused value changed the config: %+v", cfg)
	}
}

func TestHostRates(t *testing.T) {
	rate := func(h *Host, name string) int {
		h.Server.mu.Lock()
		defer h.Server.mu.Unlock()
		return h.Server.actions[name].RatePerSecond
	}
	build := func(cfg HostConfig) (*Host, error) {
		h := NewHost(demo, cfg)
		h.Register(Action{Name: "A", RatePerSecond: 5})
		h.Register(Action{Name: "B"})
		return h, h.ApplyRates(map[string]int{"B": 7})
	}
	var cfg HostConfig
	h, err := build(cfg)
	if err != nil || rate(h, "A") != 5 || rate(h, "B") != 7 {
		t.Fatalf("defaults: A %d, B %d, %v; want 5, 7", rate(h, "A"), rate(h, "B"), err)
	}
	h.Close(nil, nil)
	cfg.SetRateLimit("A", 1)
	cfg.RemoveRateLimits()
	cfg.SetRateLimit("B", 2)
	h, err = build(cfg)
	if err != nil || rate(h, "A") != 0 || rate(h, "B") != 2 {
		t.Fatalf("removed, then B set: A %d, B %d, %v; want 0, 2", rate(h, "A"), rate(h, "B"), err)
	}
	h.Close(nil, nil)
	cfg.SetRateLimit("Nope", 1)
	if h, err = build(cfg); err == nil || !strings.Contains(err.Error(), `"Nope"`) {
		t.Fatalf("a limit for an action the service lacks: %v", err)
	}
	h.Close(nil, nil)
}

// service is the smallest service on a Host: it answers "ok", or blocks
// until released.
type service struct {
	host    *Host
	URL     string
	block   chan struct{}
	entered chan struct{}
}

func (s *service) Start() error { return s.host.Start(s, &s.URL) }
func (s *service) Close()       { s.host.Close(nil, nil) }
func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.host.Enter(w) {
		return
	}
	defer s.host.Leave()
	if r.URL.Path == "/block" {
		s.entered <- struct{}{}
		<-s.block
	}
	io.WriteString(w, "ok")
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestHostLifecycle: Start serves and sets the URL; Close runs stop before
// anything else and drain after the http.Server closed, with Context
// ended, waits for the requests in progress, and happens once; Start after
// Close is refused.
func TestHostLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cfg HostConfig
		cfg.SetListener(memnet.Listen("host.test"))
		s := &service{block: make(chan struct{}), entered: make(chan struct{})}
		s.host = NewHost(demo, cfg)
		if _, err := StartService(s, nil); err != nil {
			t.Fatal(err)
		}
		if s.URL != "http://host.test" || s.host.URL != s.URL {
			t.Fatalf("URL %q", s.URL)
		}
		if err := s.Start(); err == nil || !strings.Contains(err.Error(), "already started") {
			t.Fatalf("second Start: %v", err)
		}
		c := s.host.HTTPClient()
		if code, body, err := get(c, s.URL+"/"); err != nil || code != 200 || body != "ok" {
			t.Fatalf("GET: %d %q %v", code, body, err)
		}
		go get(c, s.URL+"/block")
		<-s.entered

		var order []string
		closed := make(chan struct{})
		go func() {
			s.host.Close(func() { order = append(order, "stop") }, func() {
				if s.host.Context().Err() == nil {
					t.Error("Context has not ended when drain runs")
				}
				order = append(order, "drain")
			})
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a request was in progress")
		default:
		}
		close(s.block)
		<-closed
		if strings.Join(order, ",") != "stop,drain" {
			t.Fatalf("order %v", order)
		}
		s.host.Close(func() { t.Error("stop ran twice") }, nil)
		rec := &recorder{header: http.Header{}}
		if s.host.Enter(rec) || rec.code != http.StatusServiceUnavailable {
			t.Fatalf("Enter after Close: %d", rec.code)
		}
		if err := s.Start(); err == nil || !strings.Contains(err.Error(), "after Close") {
			t.Fatalf("Start after Close: %v", err)
		}
	})
}

type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// TestHostClosesItsTransport: a service mounted in another server (never
// started) still has its client transport's connections closed by Close,
// so no test has to close a client's idle connections itself.
func TestHostClosesItsTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &watchListener{Listener: memnet.Listen("mounted.test"), gone: make(chan struct{}, 4)}
		var cfg HostConfig
		cfg.SetListener(l)
		s := &service{host: NewHost(demo, cfg)}
		hs := &http.Server{Handler: s}
		go hs.Serve(l)
		defer hs.Close()
		defer l.Listener.Close() // first: Serve returns from Accept
		if code, _, err := get(s.host.HTTPClient(), "http://mounted.test/"); err != nil || code != 200 {
			t.Fatalf("GET: %d %v", code, err)
		}
		synctest.Wait()
		select {
		case <-l.gone:
			t.Fatal("the connection closed before Close")
		default:
		}
		s.Close()
		synctest.Wait() // no time passes: the transport's idle timeout does not count
		select {
		case <-l.gone: // the client's side closed: the server read EOF
		default:
			t.Fatal("Close left the client transport's connection open")
		}
	})
}

// watchListener reports each accepted connection whose peer has closed.
// Its Close does nothing: the server it is mounted in owns it.
type watchListener struct {
	net.Listener
	gone chan struct{}
}

func (l *watchListener) Close() error { return nil }

func (l *watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchConn{Conn: c, gone: l.gone}, nil
}

func (l *watchListener) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.Listener.(*memnet.Listener).DialContext(ctx, network, addr)
}

type watchConn struct {
	net.Conn
	gone chan struct{}
	once sync.Once
}

func (c *watchConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err == io.EOF {
		c.once.Do(func() { c.gone <- struct{}{} })
	}
	return n, err
}
