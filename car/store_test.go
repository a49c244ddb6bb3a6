package car_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// errDead is what a killed replica's store calls fail with.
var errDead = errors.New("connection refused")

// killable is one replica's view of the store, which a test can cut off,
// as when that replica's process dies or its network to the store goes.
type killable struct {
	car.LeaseStore
	dead atomic.Bool
	// deaf: this replica hears no store events, its position reads fail
	// and it never gets the head lock, as a replica that has not caught
	// up yet with what another replica did.
	deaf atomic.Bool
}

func (k *killable) Watch(f func(car.LeaseEvent)) (stop func()) {
	return k.LeaseStore.Watch(func(ev car.LeaseEvent) {
		if !k.deaf.Load() {
			f(ev)
		}
	})
}

func (k *killable) check(op string) error {
	if k.dead.Load() {
		return &car.StoreError{Op: op, Err: errDead}
	}
	return nil
}

func (k *killable) Create(ctx context.Context, c car.CreateLease) (car.LeaseRecord, bool, error) {
	if err := k.check("create"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	return k.LeaseStore.Create(ctx, c)
}

func (k *killable) List(ctx context.Context) ([]car.LeaseRecord, error) {
	if err := k.check("list"); err != nil {
		return nil, err
	}
	return k.LeaseStore.List(ctx)
}

func (k *killable) Get(ctx context.Context, u string) (car.LeaseRecord, bool, error) {
	if err := k.check("get"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	return k.LeaseStore.Get(ctx, u)
}

func (k *killable) Update(ctx context.Context, u string, g uint64, up car.LeaseUpdate) (car.LeaseRecord, error) {
	if err := k.check("update"); err != nil {
		return car.LeaseRecord{}, err
	}
	return k.LeaseStore.Update(ctx, u, g, up)
}

func (k *killable) Claim(ctx context.Context, r car.ClaimRequest) (car.Claim, error) {
	if err := k.check("claim"); err != nil {
		return car.Claim{}, err
	}
	return k.LeaseStore.Claim(ctx, r)
}

func (k *killable) Finish(ctx context.Context, u string, g uint64) (bool, error) {
	if err := k.check("finish"); err != nil {
		return false, err
	}
	return k.LeaseStore.Finish(ctx, u, g)
}

func (k *killable) Positions(ctx context.Context, u []string) ([]int, error) {
	if err := k.check("positions"); err != nil {
		return nil, err
	}
	if k.deaf.Load() {
		return nil, &car.StoreError{Op: "positions", Err: errDead}
	}
	return k.LeaseStore.Positions(ctx, u)
}

func (k *killable) QueueLen(ctx context.Context) (int, error) {
	if err := k.check("queue length"); err != nil {
		return 0, err
	}
	return k.LeaseStore.QueueLen(ctx)
}

func (k *killable) LockHead(ctx context.Context, ttl time.Duration) (car.LeaseRecord, bool, error) {
	if err := k.check("lock head"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	if k.deaf.Load() {
		return car.LeaseRecord{}, false, car.ErrHeadLocked
	}
	return k.LeaseStore.LockHead(ctx, ttl)
}

func (k *killable) UnlockHead(ctx context.Context) error {
	if err := k.check("unlock head"); err != nil {
		return err
	}
	return k.LeaseStore.UnlockHead(ctx)
}

// hangDestroy is a transport that holds DestroySession calls until their
// context ends while it is on, as a replica stalled (or killed) in the
// middle of a release.
type hangDestroy struct {
	base   http.RoundTripper
	on     atomic.Bool
	hung   chan struct{} // gets a value per held call
	passed atomic.Int32  // DestroySession calls sent on
}

func (h *hangDestroy) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Tc-Action") == "DestroySession" {
		if h.on.Load() {
			select {
			case h.hung <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		h.passed.Add(1)
	}
	return h.base.RoundTrip(r)
}

// replica is one backend replica: its manager, its view of the store, its
// API client's transport.
type replica struct {
	name  string
	mgr   *car.SessionManager
	store *killable
	tr    *hangDestroy
}

// fleet is several replicas on one store and one CAR.
type fleet struct {
	t        *testing.T
	car      *cartest.Server
	store    *car.MemoryLeaseStore
	reps     []*replica
	mu       sync.Mutex
	releases []string // "replica user reason"
}

func newFleet(t *testing.T, n, packSize int, opts ...car.ManagerOption) *fleet {
	t.Helper()
	return newFleetWith(t, n, packSize, nil, opts...)
}

// newFleetWith is newFleet with options for each replica (by name).
func newFleetWith(t *testing.T, n, packSize int, per func(name string) []car.ManagerOption, opts ...car.ManagerOption) *fleet {
	t.Helper()
	carNet := memnet.Listen("car")
	srv := cartest.Start(t, cartest.WithListener(carNet),
		cartest.WithProject(cartest.Project{ProjectId: mgrProject, ReconnectWait: 2 * time.Minute}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: packSize, Projects: []string{mgrProject}}),
		cartest.WithCleanupDelay(500*time.Millisecond), cartest.WithoutRateLimits())
	f := &fleet{t: t, car: srv, store: car.NewMemoryLeaseStore()}
	for i := range n {
		name := fmt.Sprintf("r%d", i+1)
		tr := &hangDestroy{base: &http.Transport{DialContext: carNet.DialContext}, hung: make(chan struct{}, 1)}
		client := srv.Client(car.WithHTTPClient(&http.Client{Transport: tr}), car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		ks := &killable{LeaseStore: f.store.Replica(name)}
		mopts := append([]car.ManagerOption{
			car.WithLeaseStore(ks),
			car.WithAPITimeout(5 * time.Second),
			car.WithReleaseClaimTTL(10 * time.Second),
			car.WithDestroyRetry(car.RetryPolicy{MaxAttempts: 1}),
			car.OnRelease(func(r car.Release) {
				f.mu.Lock()
				f.releases = append(f.releases, name+" "+r.UserId+" "+string(r.Reason))
				f.mu.Unlock()
			}),
		}, opts...)
		if per != nil {
			mopts = append(mopts, per(name)...)
		}
		mgr, err := car.NewSessionManager(client, mgrProject, mopts...)
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{name: name, mgr: mgr, store: ks, tr: tr}
		f.reps = append(f.reps, r)
		t.Cleanup(func() {
			r.store.dead.Store(false)
			r.tr.on.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := mgr.Shutdown(ctx); err != nil && !errors.Is(err, car.ErrManagerClosed) {
				t.Errorf("%s: Shutdown: %v", name, err)
			}
			client.CloseIdleConnections()
		})
	}
	return f
}

func (f *fleet) released() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.releases...)
}

func (f *fleet) start(r *replica, user string) *car.Lease {
	f.t.Helper()
	l, err := r.mgr.Start(f.t.Context(), car.StartRequest{UserId: user, UserIp: "10.0.0.1", ClientSession: "cs-" + user})
	if err != nil {
		f.t.Fatalf("%s: Start(%s): %v", r.name, user, err)
	}
	return l
}

// destroyed counts the sessions of user that DestroySession ended.
func (f *fleet) destroyed(user string) int {
	n := 0
	for _, e := range f.car.Events() {
		if e.Kind == cartest.EventDestroyed && e.Subject == user {
			n++
		}
	}
	return n
}

// TestSharedStartAfterQueuedLeaseEndedElsewhere: a user queued through
// replica a is admitted by b and then stopped through b, before a has
// heard of either; the user's next Start through a gets a new lease (a new
// heartbeat session, queued or admitted), not a fresh token for the lease
// that is gone, whose client would wait for a "ready" that never comes.
func TestSharedStartAfterQueuedLeaseEndedElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 2, 1)
		a, b := f.reps[0], f.reps[1]
		a.store.deaf.Store(true)
		time.Sleep(30 * time.Second) // any head lock a took at start runs out: b admits
		synctest.Wait()
		f.start(b, "holder")
		first := f.start(a, "u")
		if first.QueuePosition != 1 {
			t.Fatalf("u through a: position %d, want 1", first.QueuePosition)
		}
		if err := b.mgr.Stop(t.Context(), "holder"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if rec, ok, _ := f.store.Replica("test").Get(t.Context(), "u"); !ok || rec.State != car.LeaseActive || rec.SessionID() != first.HeartbeatSession {
			t.Fatalf("u after the holder's release: %+v (found %v), want %s active", rec, ok, first.HeartbeatSession)
		}
		if err := b.mgr.Stop(t.Context(), "u"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		again := f.start(a, "u")
		if again.HeartbeatSession == first.HeartbeatSession {
			t.Fatalf("u's Start through a after its lease ended elsewhere returned the ended lease %s", first.HeartbeatSession)
		}
		rec, ok, err := f.store.Replica("test").Get(t.Context(), "u")
		if err != nil || !ok || rec.SessionID() != again.HeartbeatSession {
			t.Errorf("the store has %+v (found %v, %v) for u, want the new lease %s", rec, ok, err, again.HeartbeatSession)
		}
		if rel := f.released(); len(rel) != 2 || rel[1] != "r2 u stopped" {
			t.Errorf("releases %v, want the holder's and u's, by r2", rel)
		}
	})
}

// TestDrainReleasesNothing: a drained replica hands its users over: no
// DestroySession, no OnRelease, the lease stays in the store, and another
// replica can release it later. Without a shared store Drain refuses.
func TestDrainReleasesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 2, 2)
		a, b := f.reps[0], f.reps[1]
		f.start(a, "u1")
		f.start(a, "u2")
		if err := a.mgr.Drain(t.Context()); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if _, err := a.mgr.Start(t.Context(), car.StartRequest{UserId: "u3", UserIp: "10.0.0.1"}); !errors.Is(err, car.ErrManagerClosed) {
			t.Errorf("Start after Drain: %v", err)
		}
		if rel := f.released(); len(rel) != 0 || f.destroyed("u1") != 0 {
			t.Fatalf("Drain released: %v", rel)
		}
		if recs := f.store.Leases(); len(recs) != 2 || recs[0].State != car.LeaseActive {
			t.Fatalf("leases after Drain: %+v", recs)
		}
		if err := b.mgr.Stop(t.Context(), "u1"); err != nil {
			t.Fatal(err)
		}
		if rel := f.released(); len(rel) != 1 || rel[0] != "r2 u1 stopped" || f.destroyed("u1") != 1 {
			t.Fatalf("releases %v", rel)
		}
	})
	srv, client := newServer(t)
	_ = srv
	mgr, err := car.NewSessionManager(client, mgrProject)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Shutdown(t.Context())
	if err := mgr.Drain(t.Context()); err == nil || !strings.Contains(err.Error(), "WithLeaseStore") {
		t.Errorf("Drain without a store: %v", err)
	}
	if _, err := mgr.Start(t.Context(), car.StartRequest{UserId: "u1", UserIp: "10.0.0.1"}); errors.Is(err, car.ErrManagerClosed) {
		t.Errorf("a refused Drain closed the manager")
	}
}

// sharedStores gives the replicas of a fleet one lease store (the fleet's)
// and one heartbeat session store with one token key, and serves each
// replica's heartbeat on its own in-memory listener.
type sharedHB struct {
	hb  *heartbeat.MemoryStore
	lis map[string]*memnet.Listener
}

func newSharedFleet(t *testing.T, n, packSize int) (*fleet, *sharedHB) {
	sh := &sharedHB{hb: heartbeat.NewMemoryStore(), lis: map[string]*memnet.Listener{}}
	key := bytes.Repeat([]byte{7}, 32)
	f := newFleetWith(t, n, packSize, func(name string) []car.ManagerOption {
		return []car.ManagerOption{car.WithHeartbeat(heartbeat.WithStore(sh.hb.Replica(name)), heartbeat.WithTokenKeys(key))}
	})
	for _, r := range f.reps {
		l := memnet.Listen("hb-" + r.name)
		sh.lis[r.name] = l
		hs := &http.Server{Handler: r.mgr}
		go hs.Serve(l)
		t.Cleanup(func() { hs.Close() })
	}
	return f, sh
}

// router is a client's network whose every dial goes to the replica it
// names: a load balancer without sticky sessions.
type router struct {
	sh     *sharedHB
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
	c, err := rt.sh.lis[rt.to].DialContext(ctx, network, addr)
	rt.conn = c
	return c, err
}

// move sends the next dials to replica to and drops the current
// connection; offline keeps the network down.
func (rt *router) move(to string, offline bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.to, rt.closed = to, offline
	if rt.conn != nil {
		rt.conn.Close()
	}
}

// TestSharedResumeElsewhereThenExpireOnce: a user started on r1 reconnects
// through r2 (which did not start the lease: it adopts it from the store),
// then vanishes. Its grace ends on one replica, whichever sweeps it: the
// lease is released once, with one DestroySession.
func TestSharedResumeElsewhereThenExpireOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, sh := newSharedFleet(t, 2, 2)
		a, b := f.reps[0], f.reps[1]
		l := f.start(a, "u1")
		rt := &router{sh: sh, to: "r1"}
		cl, err := hbclient.Connect(t.Context(), "ws://heartbeat/", l.HeartbeatSession, l.HeartbeatToken,
			hbclient.WithDialer(&websocket.Dialer{NetDialContext: rt.dial}),
			hbclient.WithReconnectDelay(func(int) time.Duration { return 100 * time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		time.Sleep(time.Second)
		rt.move("r2", false)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if cl.State() != hbclient.StateConnected {
			t.Fatalf("client state %v after moving to r2", cl.State())
		}
		if u := userState(t, b.mgr, "u1"); u.State != car.LeaseActive || u.HeartbeatSession != l.HeartbeatSession {
			t.Fatalf("u1 on r2: %+v, want the same lease, active", u)
		}
		rt.move("r2", true) // gone for good
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if rel := f.released(); len(rel) != 1 || f.destroyed("u1") != 1 {
			t.Fatalf("releases %v, %d destroyed, want one", rel, f.destroyed("u1"))
		}
		t.Logf("released: %v", f.released())
		_ = a
	})
}

// TestDrainHandsClientsOver: a rolling deploy drains r1: its client is
// closed with 1001, resumes on r2 with the same lease, and nothing is
// released.
func TestDrainHandsClientsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, sh := newSharedFleet(t, 2, 2)
		a, b := f.reps[0], f.reps[1]
		l := f.start(a, "u1")
		rt := &router{sh: sh, to: "r1"}
		cl, err := hbclient.Connect(t.Context(), "ws://heartbeat/", l.HeartbeatSession, l.HeartbeatToken,
			hbclient.WithDialer(&websocket.Dialer{NetDialContext: rt.dial}),
			hbclient.WithReconnectDelay(func(int) time.Duration { return 100 * time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		time.Sleep(time.Second)
		rt.mu.Lock()
		rt.to = "r2" // the load balancer stops sending to r1
		rt.mu.Unlock()
		if err := a.mgr.Drain(t.Context()); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if cl.State() != hbclient.StateConnected {
			t.Fatalf("client state %v after the drain", cl.State())
		}
		if u := userState(t, b.mgr, "u1"); u.State != car.LeaseActive || u.HeartbeatSession != l.HeartbeatSession {
			t.Errorf("u1 on r2: %+v", u)
		}
		if rel := f.released(); len(rel) != 0 || f.destroyed("u1") != 0 {
			t.Errorf("released after the drain: %v", rel)
		}
	})
}

// TestSharedOrphanedReleaseTakenOver: the claimer is killed inside
// DestroySession and no other replica is asked about the user (its
// heartbeat session already ended): the replica holding the head lock
// finds the release whose claim ran out and finishes it.
func TestSharedOrphanedReleaseTakenOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 2, 2)
		a := f.reps[0]
		f.start(a, "u1")
		a.tr.on.Store(true)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		go a.mgr.Stop(ctx, "u1")
		<-a.tr.hung
		a.store.dead.Store(true)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		rel := f.released()
		if len(rel) != 1 || rel[0] != "r2 u1 stopped" || f.destroyed("u1") != 1 {
			t.Fatalf("releases %v, %d destroyed, want one by r2", rel, f.destroyed("u1"))
		}
		if recs := f.store.Leases(); len(recs) != 0 {
			t.Errorf("leases left: %+v", recs)
		}
	})
}

// TestDrainReportsReleasesNotDone: a release that could not reach the
// store (unreachable) when Drain gave up is not dropped in silence: Drain
// returns it in a *ShutdownError and hands it to OnReleasePending, and a
// manager given it with WithPendingReleases carries it out, once.
func TestDrainReportsReleasesNotDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var handed []car.PendingRelease
		f := newFleet(t, 2, 2, car.OnReleasePending(func(p car.PendingRelease) {
			mu.Lock()
			handed = append(handed, p)
			mu.Unlock()
		}))
		a := f.reps[0]
		f.start(a, "u1")
		f.start(a, "u2")
		a.store.dead.Store(true)
		stopCtx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		var pendingErr *car.ReleasePendingError
		if err := a.mgr.Stop(stopCtx, "u1"); !errors.As(err, &pendingErr) {
			t.Fatalf("Stop with the store unreachable: %v, want a *ReleasePendingError", err)
		}
		drainCtx, cancelDrain := context.WithTimeout(t.Context(), 10*time.Second) // within u2's reconnect window
		defer cancelDrain()
		err := a.mgr.Drain(drainCtx)
		var sd *car.ShutdownError
		if !errors.As(err, &sd) || len(sd.Pending) != 1 || sd.Pending[0].UserId != "u1" || sd.Pending[0].Reason != car.ReleaseStopped || sd.Pending[0].Generation == 0 {
			t.Fatalf("Drain: %v, want a *ShutdownError listing u1's release (u2 was not being released)", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "car: drain: 1 release(s) not done: u1") {
			t.Errorf("Drain's error %q: want it to say drain, name u1 and wrap its context's end", err)
		}
		mu.Lock()
		if len(handed) != 1 || handed[0].UserId != "u1" {
			t.Errorf("OnReleasePending got %+v, want u1 once", handed)
		}
		mu.Unlock()
		if f.destroyed("u1") != 0 || len(f.released()) != 0 {
			t.Fatalf("released before the hand-over: %v", f.released())
		}

		var released []string
		next, err := car.NewSessionManager(f.car.Client(), mgrProject,
			car.WithLeaseStore(f.store.Replica("r3")), car.WithPendingReleases(sd.Pending...),
			car.OnRelease(func(r car.Release) {
				mu.Lock()
				released = append(released, r.UserId+" "+string(r.Reason))
				mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		defer next.Shutdown(context.Background())
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(released) != 1 || f.destroyed("u1") != 1 || f.destroyed("u2") != 0 {
			t.Errorf("after the hand-over: released %v, u1 destroyed %d times, u2 %d, want u1 once", released, f.destroyed("u1"), f.destroyed("u2"))
		}
		for _, rec := range f.store.Leases() {
			if rec.UserId == "u1" {
				t.Errorf("u1's lease is still in the store after its release: %+v", rec)
			}
		}
	})
}

// TestPendingReleaseLeavesANewerLeaseAlone: a release handed over with its
// generation, whose lease another replica finished meanwhile, does not
// touch the lease the user started since.
func TestPendingReleaseLeavesANewerLeaseAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 2, 2)
		a, b := f.reps[0], f.reps[1]
		f.start(a, "u1")
		a.store.dead.Store(true)
		stopCtx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_ = a.mgr.Stop(stopCtx, "u1")
		drainCtx, cancelDrain := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancelDrain()
		var sd *car.ShutdownError
		if err := a.mgr.Drain(drainCtx); !errors.As(err, &sd) || len(sd.Pending) != 1 || sd.Pending[0].Generation == 0 {
			t.Fatalf("Drain: %v, want u1's release with its generation", err)
		}
		if err := b.mgr.Stop(t.Context(), "u1"); err != nil { // the user's backend stops it through b
			t.Fatal(err)
		}
		l := f.start(b, "u1") // and the user comes back
		next, err := car.NewSessionManager(f.car.Client(), mgrProject,
			car.WithLeaseStore(f.store.Replica("r3")), car.WithPendingReleases(sd.Pending...))
		if err != nil {
			t.Fatal(err)
		}
		defer next.Shutdown(context.Background())
		time.Sleep(20 * time.Second) // within the new lease's reconnect window (nobody connects)
		synctest.Wait()
		if n := f.destroyed("u1"); n != 1 {
			t.Errorf("u1 destroyed %d times, want once (b's Stop): the hand-over destroyed the newer lease", n)
		}
		if u := userState(t, b.mgr, "u1"); u.State != car.LeaseActive || u.HeartbeatSession != l.HeartbeatSession {
			t.Errorf("u1's new lease on r2: %+v", u)
		}
	})
}
