package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

const leaseProject = "cap-leases"

// hangDestroy holds DestroySession calls until their context ends while it
// is on: a replica stalled (or killed) in the middle of a release.
type hangDestroy struct {
	base http.RoundTripper
	on   atomic.Bool
	hung chan struct{}
}

func (h *hangDestroy) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Tc-Action") == "DestroySession" && h.on.Load() {
		select {
		case h.hung <- struct{}{}:
		default:
		}
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	return h.base.RoundTrip(r)
}

// leaseReplica is one backend replica: its Store on the shared Redis, its
// manager, its API client's transport.
type leaseReplica struct {
	name  string
	store *Store
	mgr   *car.SessionManager
	tr    *hangDestroy
}

// leaseFleet is several replicas on one Redis and one CAR reference server.
type leaseFleet struct {
	t        *testing.T
	car      *cartest.Server
	reps     []*leaseReplica
	mu       sync.Mutex
	releases []string // "replica user reason"
}

// newLeaseFleetWith is newLeaseFleet, giving each manager its Store with
// storeOpt and each Store the options of storeOpts (if not nil).
func newLeaseFleetWith(t *testing.T, n, packSize int, client func() redis.UniversalClient, storeOpts func(name string) []Option, storeOpt func(*Store) car.ManagerOption, opts ...car.ManagerOption) *leaseFleet {
	t.Helper()
	carNet := memnet.Listen("car")
	srv := cartest.Start(t, cartest.WithListener(carNet),
		cartest.WithProject(cartest.Project{ProjectId: leaseProject, ReconnectWait: 2 * time.Minute}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: packSize, Projects: []string{leaseProject}}),
		cartest.WithCleanupDelay(200*time.Millisecond), cartest.WithoutRateLimits())
	f := &leaseFleet{t: t, car: srv}
	for i := range n {
		name := fmt.Sprintf("r%d", i+1)
		sopts := []Option{WithReplicaID(name)}
		if storeOpts != nil {
			sopts = append(sopts, storeOpts(name)...)
		}
		st, err := New(client(), leaseProject, sopts...)
		if err != nil {
			t.Fatal(err)
		}
		tr := &hangDestroy{base: &http.Transport{DialContext: carNet.DialContext}, hung: make(chan struct{}, 1)}
		cl := srv.Client(car.WithHTTPClient(&http.Client{Transport: tr}), car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		mopts := append([]car.ManagerOption{
			storeOpt(st),
			car.WithAPITimeout(2 * time.Second),
			car.WithReleaseClaimTTL(3 * time.Second),
			car.WithReleaseRetryMax(2 * time.Second),
			car.WithQueuePollInterval(200 * time.Millisecond),
			car.WithStoreTimeout(500 * time.Millisecond),
			car.WithDestroyRetry(car.RetryPolicy{MaxAttempts: 1}),
			car.OnRelease(func(r car.Release) {
				f.mu.Lock()
				f.releases = append(f.releases, name+" "+r.UserId+" "+string(r.Reason))
				f.mu.Unlock()
			}),
		}, opts...)
		mgr, err := car.NewSessionManager(cl, leaseProject, mopts...)
		if err != nil {
			t.Fatal(err)
		}
		r := &leaseReplica{name: name, store: st, mgr: mgr, tr: tr}
		f.reps = append(f.reps, r)
		t.Cleanup(func() {
			r.tr.on.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := mgr.Shutdown(ctx)
			var se *car.ShutdownError
			if err != nil && !errors.Is(err, car.ErrManagerClosed) && !errors.As(err, &se) {
				t.Errorf("%s: Shutdown: %v", name, err)
			}
			_ = st.Close()
			cl.CloseIdleConnections()
		})
	}
	return f
}

func (f *leaseFleet) released() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.releases...)
}

func (f *leaseFleet) start(r *leaseReplica, user string) *car.Lease {
	f.t.Helper()
	l, err := r.mgr.Start(f.t.Context(), car.StartRequest{UserId: user, UserIp: "10.0.0.1", ClientSession: "cs-" + user})
	if err != nil {
		f.t.Fatalf("%s: Start(%s): %v", r.name, user, err)
	}
	return l
}

// count counts CAR's model events of a kind for user ("" for any).
func (f *leaseFleet) count(kind cartest.EventKind, user string) int {
	n := 0
	for _, e := range f.car.Events() {
		if e.Kind == kind && (user == "" || e.Subject == user) {
			n++
		}
	}
	return n
}

// TestLeasesRealRedis runs against a real redis-server, in real time: two
// replicas release each lease once; with the server killed, Start fails
// fast with a *car.StoreError and a Stop is retried; the server comes back
// empty (no persistence): each replica logs the loss once and writes back
// the leases it holds, the pending release finishes once, a lease of the
// other replica is rebuilt and released once, and the next generation is
// past every earlier one.
func TestLeasesRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	logs := &logRecorder{}
	f := newLeaseFleetWith(t, 2, 2, func() redis.UniversalClient { return srv.Client(t) },
		func(name string) []Option { return []Option{WithLogger(logs.logger(name))} },
		func(st *Store) car.ManagerOption { return car.WithLeaseStore(st.Leases()) })
	a, b := f.reps[0], f.reps[1]
	for i := range 5 {
		user := fmt.Sprintf("u%d", i)
		f.start(f.reps[i%2], user)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, r := range []*leaseReplica{a, b} {
			wg.Go(func() { errs[j] = r.mgr.Stop(t.Context(), user) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("%s: Stop: %v, %v", user, errs[0], errs[1])
		}
		time.Sleep(300 * time.Millisecond) // CAR's cleanup (200 ms)
	}
	if rel := f.released(); len(rel) != 5 || f.count(cartest.EventDestroyed, "") != 5 {
		t.Fatalf("releases %v, %d destroyed, want 5 and 5", rel, f.count(cartest.EventDestroyed, ""))
	}

	f.start(a, "v1")
	f.start(b, "w1")
	srv.Kill()
	begun := time.Now()
	_, err := a.mgr.Start(t.Context(), car.StartRequest{UserId: "v2", UserIp: "10.0.0.1"})
	var se *car.StoreError
	if !errors.As(err, &se) {
		t.Fatalf("Start with Redis killed: %v, want a *car.StoreError", err)
	}
	if d := time.Since(begun); d > time.Second {
		t.Errorf("Start took %v to fail", d)
	}
	t.Logf("Start with Redis killed failed after %v: %v", time.Since(begun).Round(time.Millisecond), err)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	err = a.mgr.Stop(ctx, "v1")
	cancel()
	var pending *car.ReleasePendingError
	if !errors.As(err, &pending) {
		t.Fatalf("Stop with Redis killed: %v, want a *car.ReleasePendingError", err)
	}
	srv.Restart() // empty
	deadline := time.Now().Add(10 * time.Second)
	for len(f.released()) < 6 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if rel := f.released(); len(rel) != 6 || rel[5] != "r1 v1 stopped" || f.count(cartest.EventDestroyed, "v1") != 1 {
		t.Fatalf("after Redis came back empty: releases %v, %d destroyed", rel, f.count(cartest.EventDestroyed, "v1"))
	}
	for len(logs.count(slog.LevelError, rebuiltMsg)) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // b rebuilds at its queue runner's next poll
	}
	if n := logs.count(slog.LevelError, rebuiltMsg); n["r1"] != 1 || n["r2"] != 1 {
		t.Errorf("the data loss logged %v times by replica, want once each", n)
	}
	if rec, ok, err := a.store.Leases().Get(t.Context(), "w1"); err != nil || !ok || rec.State != car.LeaseActive {
		t.Fatalf("w1 after the rebuild: %+v %v %v, want active", rec, ok, err)
	}
	if err := a.mgr.Stop(t.Context(), "w1"); err != nil {
		t.Fatalf("Stop(w1) after the rebuild: %v", err)
	}
	for len(f.released()) < 7 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // OnRelease runs after Stop returns
	}
	if rel := f.released(); len(rel) != 7 || rel[6] != "r1 w1 stopped" || f.count(cartest.EventDestroyed, "w1") != 1 {
		t.Fatalf("w1 after the rebuild: releases %v, %d destroyed", rel, f.count(cartest.EventDestroyed, "w1"))
	}
	l := f.start(b, "v3")
	if _, gen, _ := car.ParseSessionID(l.HeartbeatSession); gen < 1<<32 {
		t.Errorf("a generation from before the data loss may be handed out again: %s", l.HeartbeatSession)
	}
}

// router sends a client's dials to the replica it names: a load balancer
// without sticky sessions.
type router struct {
	lis    map[string]*memnet.Listener
	mu     sync.Mutex
	to     string
	conn   net.Conn
	closed bool
}

func (rt *router) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, errors.New("network is down")
	}
	c, err := rt.lis[rt.to].DialContext(ctx, network, addr)
	rt.conn = c
	return c, err
}

func (rt *router) move(to string, offline bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.to, rt.closed = to, offline
	if rt.conn != nil {
		rt.conn.Close()
	}
}

// TestWithStoreResumeElsewhere: both halves on Redis (car.WithStore): a
// user started on r1 resumes through r2, which adopts the lease it did not
// start; then the user vanishes, and the lease is released once, whichever
// replica sweeps the grace.
func TestWithStoreResumeElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := redistest.Pipe(t)
		key := bytes.Repeat([]byte{9}, 32)
		f := newLeaseFleetWith(t, 2, 2, func() redis.UniversalClient { return redistest.PipeClient(t, m) }, nil,
			func(st *Store) car.ManagerOption { return car.WithStore(st) },
			car.WithHeartbeat(heartbeat.WithTokenKeys(key)))
		rt := &router{lis: map[string]*memnet.Listener{}, to: "r1"}
		for _, r := range f.reps {
			l := memnet.Listen("hb-" + r.name)
			rt.lis[r.name] = l
			hs := &http.Server{Handler: r.mgr}
			go hs.Serve(l)
			t.Cleanup(func() { hs.Close() })
		}
		a, b := f.reps[0], f.reps[1]
		l := f.start(a, "u1")
		cl, err := hbclient.Connect(t.Context(), "ws://heartbeat/", l.HeartbeatSession, l.HeartbeatToken,
			hbclient.WithDialer(&websocket.Dialer{NetDialContext: rt.dial}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		time.Sleep(time.Second)
		rt.move("r2", false)
		time.Sleep(5 * time.Second)
		if cl.State() != hbclient.StateConnected {
			t.Fatalf("client %v after moving to r2", cl.State())
		}
		found := false
		for _, u := range b.mgr.Snapshot().Users {
			if u.UserId == "u1" && u.HeartbeatSession == l.HeartbeatSession && u.State == car.LeaseActive {
				found = true
			}
		}
		if !found {
			t.Fatalf("r2 did not adopt u1: %+v", b.mgr.Snapshot().Users)
		}
		rt.move("r2", true) // gone for good
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if rel := f.released(); len(rel) != 1 || f.count(cartest.EventDestroyed, "u1") != 1 {
			t.Fatalf("releases %v, %d destroyed, want one", rel, f.count(cartest.EventDestroyed, "u1"))
		}
		t.Logf("released: %v", f.released())
	})
}
