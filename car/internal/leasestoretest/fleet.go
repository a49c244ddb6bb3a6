package leasestoretest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// FleetConfig says what NewFleet makes.
type FleetConfig struct {
	// Project is the CAR project of the managers (default Project).
	Project string
	// Replicas is how many replicas, named r1, r2, …
	Replicas int
	// PackSize is how many concurrencies CAR's one pack has.
	PackSize int
	// CAROptions are more options for the CAR reference server, after the
	// fleet's own (an in-memory listener, Project, the pack, a cleanup
	// delay of 500 ms, no rate limits).
	CAROptions []cartest.Option
	// Store, if set, returns replica name's view of the shared lease
	// store: the fleet wraps it in a Killable and gives it to the manager
	// (car.WithLeaseStore). If nil, Options give the manager its store.
	Store func(name string) car.LeaseStore
	// Options returns more options for replica name's manager, after the
	// fleet's own (the lease store if Store is set, one DestroySession
	// attempt, an OnRelease that records the release). It is called once
	// per replica, before the replica's manager is made, and may register
	// cleanups (which run after the manager's Shutdown).
	Options func(name string) []car.ManagerOption
	// ShutdownTimeout bounds each manager's Shutdown when the test ends
	// (default 2 min).
	ShutdownTimeout time.Duration
	// PendingAtShutdown: a *car.ShutdownError from that Shutdown
	// (releases not done) does not fail the test.
	PendingAtShutdown bool
}

// Fleet is several replicas, each a car.SessionManager with its own API
// client, on one lease store and one CAR reference server (car/cartest)
// on an in-memory network. When the test ends each manager is shut down
// (its store brought back to life first), and an error from Shutdown fails
// the test.
type Fleet struct {
	T    *testing.T
	CAR  *cartest.Server
	Reps []*Replica

	mu       sync.Mutex
	releases []string // "replica user reason"
	head     string   // the replica that last took or renewed the head lock
}

// Replica is one backend replica of a Fleet.
type Replica struct {
	Name string
	Mgr  *car.SessionManager
	// Store is the replica's view of the lease store, which a test can
	// cut off; nil if FleetConfig.Store is nil.
	Store *Killable
	// Tr is the transport of the replica's API client.
	Tr *HangDestroy
}

// NewFleet starts CAR and the replicas of cfg.
func NewFleet(t *testing.T, cfg FleetConfig) *Fleet {
	t.Helper()
	project := cfg.Project
	if project == "" {
		project = Project
	}
	shutdownTimeout := cfg.ShutdownTimeout
	if shutdownTimeout == 0 {
		shutdownTimeout = 2 * time.Minute
	}
	carNet := memnet.Listen("car")
	srv := cartest.Start(t, append([]cartest.Option{cartest.WithListener(carNet),
		cartest.WithProject(cartest.Project{ProjectId: project, ReconnectWait: 2 * time.Minute}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: cfg.PackSize, Projects: []string{project}}),
		cartest.WithCleanupDelay(500 * time.Millisecond), cartest.WithoutRateLimits()}, cfg.CAROptions...)...)
	f := &Fleet{T: t, CAR: srv}
	for i := range cfg.Replicas {
		name := fmt.Sprintf("r%d", i+1)
		tr := &HangDestroy{Base: &http.Transport{DialContext: carNet.DialContext}, Hung: make(chan struct{}, 1)}
		client := srv.Client(car.WithHTTPClient(&http.Client{Transport: tr}),
			car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		r := &Replica{Name: name, Tr: tr}
		var opts []car.ManagerOption
		if cfg.Store != nil {
			r.Store = &Killable{LeaseStore: cfg.Store(name), OnHead: func(held bool) { f.onHead(name, held) }}
			opts = append(opts, car.WithLeaseStore(r.Store))
		}
		opts = append(opts,
			car.WithDestroyRetry(car.RetryPolicy{MaxAttempts: 1}),
			car.OnRelease(func(rel car.Release) {
				f.mu.Lock()
				f.releases = append(f.releases, name+" "+rel.UserId+" "+string(rel.Reason))
				f.mu.Unlock()
			}))
		if cfg.Options != nil {
			opts = append(opts, cfg.Options(name)...)
		}
		mgr, err := car.NewSessionManager(client, project, opts...)
		if err != nil {
			t.Fatal(err)
		}
		r.Mgr = mgr
		f.Reps = append(f.Reps, r)
		t.Cleanup(func() {
			if r.Store != nil {
				r.Store.Dead.Store(false)
			}
			r.Tr.On.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			err := mgr.Shutdown(ctx)
			var se *car.ShutdownError
			if err != nil && !errors.Is(err, car.ErrManagerClosed) && !(cfg.PendingAtShutdown && errors.As(err, &se)) {
				t.Errorf("%s: Shutdown: %v", name, err)
			}
			client.CloseIdleConnections()
		})
	}
	return f
}

func (f *Fleet) onHead(name string, held bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case held:
		f.head = name
	case f.head == name:
		f.head = ""
	}
}

// headHolder returns the replica that holds the head lock, as far as the
// replicas' Killable stores saw.
func (f *Fleet) headHolder() *Replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.Reps {
		if r.Name == f.head {
			return r
		}
	}
	return nil
}

// Released returns the releases the replicas' OnRelease saw, in order,
// each "replica user reason".
func (f *Fleet) Released() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.releases...)
}

// Start starts user's lease through replica r, failing the test on an
// error.
func (f *Fleet) Start(r *Replica, user string) *car.Lease {
	f.T.Helper()
	l, err := r.Mgr.Start(f.T.Context(), car.StartRequest{UserId: user, UserIp: "10.0.0.1", ClientSession: "cs-" + user})
	if err != nil {
		f.T.Fatalf("%s: Start(%s): %v", r.Name, user, err)
	}
	return l
}

// Count counts CAR's model events of a kind for user ("" for any user).
func (f *Fleet) Count(kind cartest.EventKind, user string) int {
	n := 0
	for _, e := range f.CAR.Events() {
		if e.Kind == kind && (user == "" || e.Subject == user) {
			n++
		}
	}
	return n
}

// Router serves each replica's manager (its heartbeat endpoint) on an
// in-memory listener of its own until the test ends, and returns a
// client's network in front of them that sends its dials to replica to.
func (f *Fleet) Router(to string) *Router {
	rt := &Router{lis: map[string]*memnet.Listener{}, to: to}
	for _, r := range f.Reps {
		l := memnet.Listen("hb-" + r.Name)
		rt.lis[r.Name] = l
		hs := &http.Server{Handler: r.Mgr}
		go hs.Serve(l)
		f.T.Cleanup(func() { hs.Close() })
	}
	return rt
}

// ResumeElsewhereThenExpireOnce runs, in a synctest bubble, on a fleet of
// two replicas that share the heartbeat sessions as well as the leases
// and serve their heartbeats behind rt (sending dials to r1): a user
// started on r1 resumes through r2, which adopts the lease it did not
// start; then the user vanishes, and the lease is released once, with one
// DestroySession, whichever replica sweeps its grace. opts are the
// heartbeat client's.
func ResumeElsewhereThenExpireOnce(t *testing.T, f *Fleet, rt *Router, opts ...hbclient.Option) {
	a, b := f.Reps[0], f.Reps[1]
	l := f.Start(a, "u1")
	cl := rt.Connect(t, l, opts...)
	time.Sleep(time.Second)
	rt.Move(b.Name, false)
	time.Sleep(5 * time.Second)
	synctest.Wait()
	if cl.State() != hbclient.StateConnected {
		t.Fatalf("client state %v after moving to %s", cl.State(), b.Name)
	}
	found := false
	for _, u := range b.Mgr.Snapshot().Users {
		if u.UserId == "u1" && u.HeartbeatSession == l.HeartbeatSession && u.State == car.LeaseActive {
			found = true
		}
	}
	if !found {
		t.Fatalf("%s did not adopt u1 (the same lease, active): %+v", b.Name, b.Mgr.Snapshot().Users)
	}
	rt.Move(b.Name, true) // gone for good
	time.Sleep(3 * time.Minute)
	synctest.Wait()
	if rel := f.Released(); len(rel) != 1 || f.Count(cartest.EventDestroyed, "u1") != 1 {
		t.Fatalf("releases %v, %d destroyed, want one", rel, f.Count(cartest.EventDestroyed, "u1"))
	}
	t.Logf("released: %v", f.Released())
}

// Router is a client's network whose every dial goes to the replica it
// names: a load balancer without sticky sessions.
type Router struct {
	lis    map[string]*memnet.Listener
	mu     sync.Mutex
	to     string
	conn   net.Conn
	closed bool
}

// Dial connects to the replica the router names; it fits
// websocket.Dialer.NetDialContext.
func (rt *Router) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, errors.New("network is down")
	}
	c, err := rt.lis[rt.to].DialContext(ctx, network, addr)
	rt.conn = c
	return c, err
}

// Connect connects a heartbeat client for lease l through rt, with opts,
// and closes it when the test ends.
func (rt *Router) Connect(t *testing.T, l *car.Lease, opts ...hbclient.Option) *hbclient.Client {
	t.Helper()
	cl, err := hbclient.Connect(t.Context(), "ws://heartbeat/", l.HeartbeatSession, l.HeartbeatToken,
		append([]hbclient.Option{hbclient.WithDialer(&websocket.Dialer{NetDialContext: rt.Dial})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Another returns another client's network in front of the same
// replicas, sending its dials to replica to.
func (rt *Router) Another(to string) *Router {
	return &Router{lis: rt.lis, to: to}
}

// Move sends the next dials to replica to and drops the current
// connection; offline keeps the network down.
func (rt *Router) Move(to string, offline bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.to, rt.closed = to, offline
	if rt.conn != nil {
		rt.conn.Close()
	}
}

// Redirect sends the next dials to replica to, and leaves the current
// connection as it is.
func (rt *Router) Redirect(to string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.to = to
}
