// Package app is the web demo's server, importable so that the browser
// tests (heartbeat/web/browsertest) drive the very page `go run
// ./examples/webdemo` serves: an embedded CAR reference server (package
// cartest), a car.SessionManager on it, the heartbeat's browser client
// (package heartbeat/web), and a page that uses them with a stand-in for
// TCGSDK whose "cloud stream" is the reference server's client stream.
//
// Routes:
//
//	GET  /                    the demo page (?user=NAME, else a name per tab)
//	GET  /static/…            the page's script and the TCGSDK stand-in
//	GET  /heartbeat/web/…     heartbeat.js, tcgsdk.js and their .d.ts (web.Handler)
//	GET  /heartbeat           the heartbeat WebSocket (the SessionManager)
//	POST /api/start           {"User","ClientSession"} → the car.Lease, as JSON
//	POST /api/refresh         {"User","ClientSession"} → RefreshClientSession (a queued user)
//	POST /api/stop            {"User"} → SessionManager.Stop
//	GET  /api/state           the manager's Snapshot and the reference server's concurrencies
package app

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/web"
)

// ProjectID is the demo's CAR project.
const ProjectID = "cap-webdemo"

//go:embed static
var static embed.FS

// Config sets the demo's timings. Zero fields take the defaults, which are
// short so that a demo shows everything within a minute.
type Config struct {
	// Addr is where to listen (default 127.0.0.1:0: loopback, any port).
	Addr string
	// Concurrencies in the project's pack (default 3).
	Concurrencies int
	// PingInterval and PingTimeout of the heartbeat (default 1 s and 3 s).
	PingInterval, PingTimeout time.Duration
	// ReconnectWait is the manager's reconnect wait, the heartbeat's grace
	// window (default 8 s).
	ReconnectWait time.Duration
	// IdleThreshold (default 10 s) and IdleRelease (default 2: the first
	// notice warns, the second releases).
	IdleThreshold time.Duration
	IdleRelease   int
	// CleanupDelay of the reference server (default 500 ms).
	CleanupDelay time.Duration
	// Manager holds more options for the SessionManager (e.g. what to do
	// when the stream is lost).
	Manager []car.ManagerOption
	// Logger gets the manager's and the servers' logs (default: silent).
	Logger *slog.Logger
	// OnStreamEvent, if set, also gets the stream events the pages report
	// (the demo shows the latest one of each user).
	OnStreamEvent func(car.StreamEvent)
	// Routes, if set, adds routes to the demo's mux (the browser tests
	// serve pages of their own on the demo's origin).
	Routes func(*http.ServeMux)
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.Concurrencies == 0 {
		c.Concurrencies = 3
	}
	set(&c.PingInterval, time.Second)
	set(&c.PingTimeout, 3*time.Second)
	set(&c.ReconnectWait, 8*time.Second)
	set(&c.IdleThreshold, 10*time.Second)
	set(&c.CleanupDelay, 500*time.Millisecond)
	if c.IdleRelease == 0 {
		c.IdleRelease = 2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// App is a running demo.
type App struct {
	// URL is the page's address, e.g. http://127.0.0.1:41234/.
	URL string
	// CAR is the embedded reference server: what CAR sees.
	CAR *cartest.Server
	// Manager is the backend's session manager.
	Manager *car.SessionManager

	cfg    Config
	client *car.Client
	http   *http.Server
	served chan struct{}

	mu       sync.Mutex
	releases []car.Release
	streams  map[string]car.StreamEvent // the latest of each user
}

// New starts the demo.
func New(cfg Config) (*App, error) {
	cfg.defaults()
	srv, err := cartest.NewServer(
		cartest.WithProject(cartest.Project{ProjectId: ProjectID}),
		cartest.WithPack(cartest.Pack{PackId: "pack-demo", Size: cfg.Concurrencies, Projects: []string{ProjectID}}),
		cartest.WithCleanupDelay(cfg.CleanupDelay),
		cartest.WithLogger(cfg.Logger),
	)
	if err != nil {
		return nil, err
	}
	a := &App{CAR: srv, cfg: cfg, client: srv.Client(), served: make(chan struct{}), streams: make(map[string]car.StreamEvent)}
	opts := append([]car.ManagerOption{
		car.WithReconnectWait(cfg.ReconnectWait),
		car.WithIdleThreshold(cfg.IdleThreshold),
		car.WithIdleRelease(cfg.IdleRelease),
		car.WithQueuePollInterval(250 * time.Millisecond),
		car.WithManagerLogger(cfg.Logger),
		car.WithHeartbeat(
			heartbeat.WithPingInterval(cfg.PingInterval),
			heartbeat.WithPingTimeout(cfg.PingTimeout),
			heartbeat.WithWriteTimeout(2*time.Second),
			heartbeat.WithLogger(cfg.Logger),
		),
		car.OnStreamEvent(func(ev car.StreamEvent) {
			a.mu.Lock()
			a.streams[ev.UserId] = ev
			a.mu.Unlock()
			if cfg.OnStreamEvent != nil {
				cfg.OnStreamEvent(ev)
			}
		}),
		car.OnRelease(func(r car.Release) {
			a.mu.Lock()
			a.releases = append(a.releases, r)
			a.mu.Unlock()
		}),
	}, cfg.Manager...)
	a.Manager, err = car.NewSessionManager(a.client, ProjectID, opts...)
	if err != nil {
		srv.Close()
		return nil, err
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		a.Manager.Shutdown(context.Background())
		srv.Close()
		return nil, fmt.Errorf("webdemo: listen: %w", err)
	}
	a.URL = "http://" + l.Addr().String() + "/"
	a.http = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	go func() {
		defer close(a.served)
		a.http.Serve(l)
	}()
	return a, nil
}

// Releases returns the releases so far, oldest first.
func (a *App) Releases() []car.Release {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]car.Release(nil), a.releases...)
}

// Close drains the manager (releasing every concurrency) and stops the
// servers.
func (a *App) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.Manager.Shutdown(ctx)
	a.http.Shutdown(ctx)
	a.http.Close() // hijacked WebSockets are the manager's; anything else goes
	<-a.served
	a.client.CloseIdleConnections()
	a.CAR.Close()
}

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	mux.Handle("GET /heartbeat/web/", web.Handler())
	mux.Handle("GET /heartbeat", a.Manager)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "static/index.html")
	})
	mux.HandleFunc("POST /api/start", a.start)
	mux.HandleFunc("POST /api/refresh", a.refresh)
	mux.HandleFunc("POST /api/stop", a.stop)
	mux.HandleFunc("GET /api/state", a.state)
	if a.cfg.Routes != nil {
		a.cfg.Routes(mux)
	}
	return mux
}

var userName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,40}$`)

type startRequest struct {
	User          string
	ClientSession string
}

// startAnswer is the car.Lease plus what the page shows.
type startAnswer struct {
	*car.Lease
	IdleThresholdMs int64
	IdleRelease     int
	ReconnectWaitMs int64
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "webdemo: the body must be a JSON object: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (a *App) start(w http.ResponseWriter, r *http.Request) {
	var req startRequest
	if !decode(w, r, &req) {
		return
	}
	if !userName.MatchString(req.User) {
		http.Error(w, "webdemo: field User must be 1 to 40 letters, digits, '_', '.' or '-'", http.StatusBadRequest)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	lease, err := a.Manager.Start(r.Context(), car.StartRequest{UserId: req.User, UserIp: ip, ClientSession: req.ClientSession})
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, car.ErrQueueFull) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, "webdemo: start: "+err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // the token is for this client only
	json.NewEncoder(w).Encode(startAnswer{
		Lease:           lease,
		IdleThresholdMs: a.cfg.IdleThreshold.Milliseconds(),
		IdleRelease:     a.cfg.IdleRelease,
		ReconnectWaitMs: a.cfg.ReconnectWait.Milliseconds(),
	})
}

// refresh hands a queued user's fresh ClientSession to the manager.
func (a *App) refresh(w http.ResponseWriter, r *http.Request) {
	var req startRequest
	if !decode(w, r, &req) {
		return
	}
	err := a.Manager.RefreshClientSession(r.Context(), req.User, req.ClientSession)
	switch {
	case errors.Is(err, car.ErrNotQueued):
		http.Error(w, "webdemo: refresh: "+err.Error(), http.StatusConflict)
	case err != nil:
		http.Error(w, "webdemo: refresh: "+err.Error(), http.StatusBadRequest)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *App) stop(w http.ResponseWriter, r *http.Request) {
	var req struct{ User string }
	if !decode(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := a.Manager.Stop(ctx, req.User); err != nil {
		http.Error(w, "webdemo: stop: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// State is what /api/state answers.
type State struct {
	Users         []UserState
	Concurrencies []ConcurrencyState
	Releases      []ReleaseState
}

// UserState is a user as the manager sees it.
type UserState struct {
	User          string
	State         string
	QueuePosition int
	Connected     bool
	IdleTimes     int
	// Stream is the latest stream event the page reported, e.g. "lost -3".
	Stream string
}

// ConcurrencyState is a concurrency as CAR (the reference server) sees it.
type ConcurrencyState struct {
	Id, State, User string //nolint:revive
}

// ReleaseState is one release.
type ReleaseState struct {
	User, Reason string
	At           time.Time
}

func (a *App) state(w http.ResponseWriter, _ *http.Request) {
	var st State
	a.mu.Lock()
	streams := make(map[string]car.StreamEvent, len(a.streams))
	for k, v := range a.streams {
		streams[k] = v
	}
	a.mu.Unlock()
	for _, u := range a.Manager.Snapshot().Users {
		us := UserState{User: u.UserId, State: u.State.String(), QueuePosition: u.QueuePosition, Connected: u.Connected, IdleTimes: u.IdleTimes}
		if ev, ok := streams[u.UserId]; ok {
			us.Stream = fmt.Sprintf("%s %d", ev.State, ev.Code)
		}
		st.Users = append(st.Users, us)
	}
	for _, c := range a.CAR.Concurrencies() {
		st.Concurrencies = append(st.Concurrencies, ConcurrencyState{Id: c.ConcurrencyId, State: c.State.String(), User: c.UserId})
	}
	rel := a.Releases()
	if len(rel) > 10 {
		rel = rel[len(rel)-10:]
	}
	for _, r := range rel {
		st.Releases = append(st.Releases, ReleaseState{User: r.UserId, Reason: string(r.Reason), At: r.At})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(st)
}
