package car_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/car/internal/leasestoretest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// fleet is a leasestoretest.Fleet on one in-memory lease store.
type fleet struct {
	*leasestoretest.Fleet
	store *car.MemoryLeaseStore
}

func newFleet(t *testing.T, n, packSize int, opts ...car.ManagerOption) *fleet {
	t.Helper()
	return newFleetWith(t, n, packSize, nil, opts...)
}

// newFleetWith is newFleet with options for each replica (by name).
func newFleetWith(t *testing.T, n, packSize int, per func(name string) []car.ManagerOption, opts ...car.ManagerOption) *fleet {
	t.Helper()
	st := car.NewMemoryLeaseStore()
	return &fleet{store: st, Fleet: leasestoretest.NewFleet(t, leasestoretest.FleetConfig{
		Project:  mgrProject,
		Replicas: n,
		PackSize: packSize,
		Store:    func(name string) car.LeaseStore { return st.Replica(name) },
		Options: func(name string) []car.ManagerOption {
			mopts := append([]car.ManagerOption{
				car.WithAPITimeout(5 * time.Second),
				car.WithReleaseClaimTTL(10 * time.Second),
			}, opts...)
			if per != nil {
				mopts = append(mopts, per(name)...)
			}
			return mopts
		},
	})}
}

// replica is a replica of a fleet.
type replica = leasestoretest.Replica

// destroyed counts the sessions of user that DestroySession ended.
func (f *fleet) destroyed(user string) int { return f.Count(cartest.EventDestroyed, user) }

// TestSharedStartAfterQueuedLeaseEndedElsewhere: a user queued through
// replica a is admitted by b and then stopped through b, before a has
// heard of either; the user's next Start through a gets a new lease (a new
// heartbeat session, queued or admitted), not a fresh token for the lease
// that is gone, whose client would wait for a "ready" that never comes.
func TestSharedStartAfterQueuedLeaseEndedElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 2, 1)
		a, b := f.Reps[0], f.Reps[1]
		a.Store.Deaf.Store(true)
		time.Sleep(30 * time.Second) // any head lock a took at start runs out: b admits
		synctest.Wait()
		f.Start(b, "holder")
		first := f.Start(a, "u")
		if first.QueuePosition != 1 {
			t.Fatalf("u through a: position %d, want 1", first.QueuePosition)
		}
		if err := b.Mgr.Stop(t.Context(), "holder"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if rec, ok, _ := f.store.Replica("test").Get(t.Context(), "u"); !ok || rec.State != car.LeaseActive || rec.SessionID() != first.HeartbeatSession {
			t.Fatalf("u after the holder's release: %+v (found %v), want %s active", rec, ok, first.HeartbeatSession)
		}
		if err := b.Mgr.Stop(t.Context(), "u"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		again := f.Start(a, "u")
		if again.HeartbeatSession == first.HeartbeatSession {
			t.Fatalf("u's Start through a after its lease ended elsewhere returned the ended lease %s", first.HeartbeatSession)
		}
		rec, ok, err := f.store.Replica("test").Get(t.Context(), "u")
		if err != nil || !ok || rec.SessionID() != again.HeartbeatSession {
			t.Errorf("the store has %+v (found %v, %v) for u, want the new lease %s", rec, ok, err, again.HeartbeatSession)
		}
		if rel := f.Released(); len(rel) != 2 || rel[1] != "r2 u stopped" {
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
		a, b := f.Reps[0], f.Reps[1]
		f.Start(a, "u1")
		f.Start(a, "u2")
		if err := a.Mgr.Drain(t.Context()); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if _, err := a.Mgr.Start(t.Context(), car.StartRequest{UserId: "u3", UserIp: "10.0.0.1"}); !errors.Is(err, car.ErrManagerClosed) {
			t.Errorf("Start after Drain: %v", err)
		}
		if rel := f.Released(); len(rel) != 0 || f.destroyed("u1") != 0 {
			t.Fatalf("Drain released: %v", rel)
		}
		if recs := f.store.Leases(); len(recs) != 2 || recs[0].State != car.LeaseActive {
			t.Fatalf("leases after Drain: %+v", recs)
		}
		if err := b.Mgr.Stop(t.Context(), "u1"); err != nil {
			t.Fatal(err)
		}
		if rel := f.Released(); len(rel) != 1 || rel[0] != "r2 u1 stopped" || f.destroyed("u1") != 1 {
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

// newSharedFleet gives the replicas of a fleet one lease store (the
// fleet's) and one heartbeat session store with one token key, and serves
// each replica's heartbeat behind a router that sends dials to r1.
func newSharedFleet(t *testing.T, n, packSize int) (*fleet, *leasestoretest.Router) {
	hb := heartbeat.NewMemoryStore()
	key := bytes.Repeat([]byte{7}, 32)
	f := newFleetWith(t, n, packSize, func(name string) []car.ManagerOption {
		return []car.ManagerOption{car.WithHeartbeat(heartbeat.WithStore(hb.Replica(name)), heartbeat.WithTokenKeys(key))}
	})
	return f, f.Router("r1")
}

// TestSharedResumeElsewhereThenExpireOnce: a user started on r1 reconnects
// through r2 (which did not start the lease: it adopts it from the store),
// then vanishes. Its grace ends on one replica, whichever sweeps it: the
// lease is released once, with one DestroySession.
func TestSharedResumeElsewhereThenExpireOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, rt := newSharedFleet(t, 2, 2)
		leasestoretest.ResumeElsewhereThenExpireOnce(t, f.Fleet, rt,
			hbclient.WithReconnectDelay(func(int) time.Duration { return 100 * time.Millisecond }))
	})
}

// TestDrainHandsClientsOver: a rolling deploy drains r1: its client is
// closed with 1001, resumes on r2 with the same lease, and nothing is
// released.
func TestDrainHandsClientsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, rt := newSharedFleet(t, 2, 2)
		a, b := f.Reps[0], f.Reps[1]
		l := f.Start(a, "u1")
		cl := rt.Connect(t, l, hbclient.WithReconnectDelay(func(int) time.Duration { return 100 * time.Millisecond }))
		time.Sleep(time.Second)
		rt.Redirect("r2") // the load balancer stops sending to r1
		if err := a.Mgr.Drain(t.Context()); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if cl.State() != hbclient.StateConnected {
			t.Fatalf("client state %v after the drain", cl.State())
		}
		if u := userState(t, b.Mgr, "u1"); u.State != car.LeaseActive || u.HeartbeatSession != l.HeartbeatSession {
			t.Errorf("u1 on r2: %+v", u)
		}
		if rel := f.Released(); len(rel) != 0 || f.destroyed("u1") != 0 {
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
		a := f.Reps[0]
		f.Start(a, "u1")
		a.Tr.On.Store(true)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		go a.Mgr.Stop(ctx, "u1")
		<-a.Tr.Hung
		a.Store.Dead.Store(true)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		rel := f.Released()
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
		a := f.Reps[0]
		f.Start(a, "u1")
		f.Start(a, "u2")
		a.Store.Dead.Store(true)
		stopCtx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		var pendingErr *car.ReleasePendingError
		if err := a.Mgr.Stop(stopCtx, "u1"); !errors.As(err, &pendingErr) {
			t.Fatalf("Stop with the store unreachable: %v, want a *ReleasePendingError", err)
		}
		drainCtx, cancelDrain := context.WithTimeout(t.Context(), 10*time.Second) // within u2's reconnect window
		defer cancelDrain()
		err := a.Mgr.Drain(drainCtx)
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
		if f.destroyed("u1") != 0 || len(f.Released()) != 0 {
			t.Fatalf("released before the hand-over: %v", f.Released())
		}

		var released []string
		next, err := car.NewSessionManager(f.CAR.Client(), mgrProject,
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
		a, b := f.Reps[0], f.Reps[1]
		f.Start(a, "u1")
		a.Store.Dead.Store(true)
		stopCtx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_ = a.Mgr.Stop(stopCtx, "u1")
		drainCtx, cancelDrain := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancelDrain()
		var sd *car.ShutdownError
		if err := a.Mgr.Drain(drainCtx); !errors.As(err, &sd) || len(sd.Pending) != 1 || sd.Pending[0].Generation == 0 {
			t.Fatalf("Drain: %v, want u1's release with its generation", err)
		}
		if err := b.Mgr.Stop(t.Context(), "u1"); err != nil { // the user's backend stops it through b
			t.Fatal(err)
		}
		l := f.Start(b, "u1") // and the user comes back
		next, err := car.NewSessionManager(f.CAR.Client(), mgrProject,
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
		if u := userState(t, b.Mgr, "u1"); u.State != car.LeaseActive || u.HeartbeatSession != l.HeartbeatSession {
			t.Errorf("u1's new lease on r2: %+v", u)
		}
	})
}
