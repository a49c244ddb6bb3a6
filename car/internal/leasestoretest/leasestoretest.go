// Package leasestoretest is the conformance suite of car.LeaseStore: the
// behaviour that SessionManagers of several replicas rely on when they
// share one store. Every implementation runs it (the in-memory store in
// package car's tests, the Redis one in car/redisstore's), so that a case
// is written once and asserted on each.
//
// Each case runs inside a testing/synctest bubble, with several managers
// on one store and one CAR reference server (car/cartest) on an in-memory
// network: time is the bubble's fake clock, so a store must follow it (the
// in-memory store reads time.Now; miniredis on an in-bubble pipe does).
package leasestoretest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Project is the CAR project of the suite's managers; a backend whose store
// is bound to a project uses it.
const Project = "cap-suite"

// Backend is one shared store under test, made inside the case's bubble.
type Backend struct {
	// Replica returns the view of the store of replica name, as that
	// replica's manager would have it (its own connection, if any).
	Replica func(name string) car.LeaseStore
	// Left describes what the store still holds of leases (records,
	// queue entries, claims) once every lease has ended; empty if
	// nothing. Keys a store keeps for good (counters, locks that run out)
	// are not leftovers.
	Left func() []string
	// Down makes the store unreachable for every replica, until Up: each
	// call fails (as when the store's server is down or answers only
	// errors). It returns the cause the store's errors then wrap, for
	// errors.Is, or nil if there is none to match.
	Down func() error
	// Up brings the store back, with what it held.
	Up func()
	// FailFast bounds how long a call may take to fail while the store is
	// down (0: at once, on the bubble's clock).
	FailFast time.Duration
	// Sessions, if set, returns replica name's view of a heartbeat
	// session store shared by the replicas, of the same replica id as
	// Replica(name)'s. The cases whose clients outlive their replica
	// need it (they skip without it); the others run each replica's
	// heartbeat server on a store of its own.
	Sessions func(name string) heartbeat.Store
}

// Run runs the suite on the backends newBackend makes, one per case. It is
// called inside the case's synctest bubble, and may register cleanups on
// t.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	cases := []struct {
		name string
		run  func(*testing.T, func(*testing.T) Backend)
	}{
		{"ReleaseClaimedOnce", releaseClaimedOnce},
		{"QueueFIFOAcrossReplicas", queueFIFOAcrossReplicas},
		{"StartWaitsForReleaseElsewhere", startWaitsForReleaseElsewhere},
		{"HeadLockTakeover", headLockTakeover},
		{"ClaimerDiesMidRelease", claimerDiesMidRelease},
		{"StoreUnreachable", storeUnreachable},
		{"ReleaseWakesQueueAtOnce", releaseWakesQueueAtOnce},
		{"PositionsPushedAcrossReplicas", positionsPushedAcrossReplicas},
		{"QueuedUserGoneLeavesQueue", queuedUserGoneLeavesQueue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { c.run(t, newBackend) })
		})
	}
}

// fleet is the suite's Fleet on a case's backend, with a view of the
// store for the case's checks.
type fleet struct {
	*Fleet
	be    Backend
	audit car.LeaseStore
	sess  map[string]*KillableSessions // by replica, with fleetConfig.sessions
}

func newFleet(t *testing.T, newBackend func(*testing.T) Backend, n, packSize int) *fleet {
	t.Helper()
	return newFleetWith(t, newBackend, n, packSize, fleetConfig{poll: pollInterval, cleanup: 500 * time.Millisecond})
}

// fleetConfig is what a case may change of the fleet's timings.
type fleetConfig struct {
	poll    time.Duration // the managers' queue poll interval
	cleanup time.Duration // CAR's cleanup delay after a DestroySession
	// sessions: the heartbeat servers share Backend.Sessions (and their
	// token keys).
	sessions bool
}

func newFleetWith(t *testing.T, newBackend func(*testing.T) Backend, n, packSize int, cfg fleetConfig) *fleet {
	t.Helper()
	be := newBackend(t)
	if cfg.sessions && be.Sessions == nil {
		t.Skip("the backend has no shared heartbeat session store (Backend.Sessions)")
	}
	audit := be.Replica("audit")
	sess := map[string]*KillableSessions{}
	f := &fleet{be: be, audit: audit, sess: sess, Fleet: NewFleet(t, FleetConfig{
		Replicas:   n,
		PackSize:   packSize,
		CAROptions: []cartest.Option{cartest.WithCleanupDelay(cfg.cleanup)},
		Store:      be.Replica,
		Options: func(name string) []car.ManagerOption {
			opts := []car.ManagerOption{
				car.WithAPITimeout(apiTimeout),
				car.WithReleaseClaimTTL(claimTTL),
				car.WithQueuePollInterval(cfg.poll),
				car.WithStoreTimeout(storeTimeout),
			}
			if cfg.sessions {
				ks := &KillableSessions{Store: be.Sessions(name)}
				sess[name] = ks
				opts = append(opts, car.WithHeartbeat(heartbeat.WithStore(ks), heartbeat.WithTokenKeys([]byte(tokenKey))))
			}
			return opts
		},
	})}
	for _, r := range f.Reps {
		t.Cleanup(func() { // before the manager's Shutdown: a killed replica comes back
			r.Tr.Dead.Store(false)
			if ks := sess[r.Name]; ks != nil {
				ks.Dead.Store(false)
			}
		})
	}
	return f
}

// tokenKey signs the heartbeat tokens of a fleet whose replicas share
// their sessions.
const tokenKey = "leasestoretest token key: 32 b!!"

// noLeaks checks that CAR holds no concurrency for a user that no live
// lease in the store holds, and that no lease was released twice.
func (f *fleet) noLeaks() {
	f.T.Helper()
	for _, c := range f.CAR.Concurrencies() {
		if c.UserId == "" || c.State == cartest.StateIdle || c.State == cartest.StateCleanup {
			continue
		}
		rec, ok, err := f.audit.Get(f.T.Context(), c.UserId)
		if err != nil || !ok || rec.State == car.LeaseReleasing {
			f.T.Errorf("leaked: CAR holds %+v for %s, whose lease in the store is %+v (found %v, %v)", c, c.UserId, rec, ok, err)
		}
	}
	seen := map[string]bool{}
	for _, r := range f.Released() {
		user := strings.Fields(r)[1]
		if seen[user] {
			f.T.Errorf("%s released more than once: %v", user, f.Released())
		}
		seen[user] = true
	}
	for user := range seen {
		if n := f.Count(cartest.EventDestroyed, user); n > 1 {
			f.T.Errorf("CAR destroyed %s %d times, want at most once", user, n)
		}
	}
}

// releaseClaimedOnce: two replicas release the same lease at the same
// moment (Stop on each): exactly one wins the claim, calls DestroySession
// and runs OnRelease; both Stops return when it is done; nothing of the
// leases is left in the store.
func releaseClaimedOnce(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleet(t, newBackend, 2, 2)
	a, b := f.Reps[0], f.Reps[1]
	const rounds = 20
	for i := range rounds {
		user := fmt.Sprintf("u%d", i)
		f.Start(f.Reps[i%2], user) // started on either replica
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, r := range []*Replica{a, b} {
			wg.Go(func() { errs[j] = r.Mgr.Stop(t.Context(), user) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("%s: Stop: %v, %v", user, errs[0], errs[1])
		}
		time.Sleep(time.Second) // CAR's cleanup
	}
	synctest.Wait()
	rel := f.Released()
	if len(rel) != rounds {
		t.Fatalf("%d releases for %d leases: %v", len(rel), rounds, rel)
	}
	for i := range rounds {
		if n := f.Count(cartest.EventDestroyed, fmt.Sprintf("u%d", i)); n != 1 {
			t.Errorf("u%d destroyed %d times, want 1", i, n)
		}
	}
	if left := f.be.Left(); len(left) != 0 {
		t.Errorf("left in the store: %s", strings.Join(left, ", "))
	}
	byReplica := map[string]int{}
	for _, r := range rel {
		byReplica[r[:2]]++
	}
	t.Logf("claims won: %v", byReplica)
}

// queueFIFOAcrossReplicas: users queue through three replicas in turn;
// every one who polls through another replica keeps its place, and
// admission follows the tickets across replicas (0 inversions) while each
// release goes through yet another replica.
func queueFIFOAcrossReplicas(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleet(t, newBackend, 3, 1)
	f.Start(f.Reps[0], "holder")
	const n = 16
	leases := make([]*car.Lease, n)
	for i := range n {
		r := f.Reps[i%3]
		leases[i] = f.Start(r, fmt.Sprintf("q%02d", i))
		if leases[i].QueuePosition != i+1 {
			t.Fatalf("q%02d on %s: position %d, want %d", i, r.Name, leases[i].QueuePosition, i+1)
		}
	}
	for i := range n { // everyone polls through the next replica
		if l := f.Start(f.Reps[(i+1)%3], fmt.Sprintf("q%02d", i)); l.QueuePosition != i+1 {
			t.Errorf("q%02d polling through another replica: position %d, want %d", i, l.QueuePosition, i+1)
		}
	}
	var mu sync.Mutex
	var order []string
	for i, l := range leases {
		go func() {
			if _, err := l.Wait(t.Context()); err == nil {
				mu.Lock()
				order = append(order, fmt.Sprintf("q%02d", i))
				mu.Unlock()
			}
		}()
	}
	current := "holder"
	for k := range n {
		if err := f.Reps[(k+2)%3].Mgr.Stop(t.Context(), current); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		mu.Lock()
		if len(order) != k+1 {
			mu.Unlock()
			t.Fatalf("after %d releases, admitted %v", k+1, order)
		}
		current = order[k]
		mu.Unlock()
	}
	inversions := 0
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			inversions++
		}
	}
	t.Logf("admission order %v: %d inversions", order, inversions)
	if inversions != 0 {
		t.Errorf("%d inversions", inversions)
	}
}

// startWaitsForReleaseElsewhere: a Start on one replica for a user whose
// lease another replica is releasing waits until that release is done:
// the new ApplyConcurrent comes after the DestroySession, and the new
// lease is a new generation with a session.
func startWaitsForReleaseElsewhere(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleet(t, newBackend, 2, 2)
	a, b := f.Reps[0], f.Reps[1]
	f.Start(a, "u1")
	if err := f.CAR.InjectFault("DestroySession", cartest.Fault{Latency: 3 * time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	go a.Mgr.Stop(t.Context(), "u1")
	time.Sleep(100 * time.Millisecond) // a is in DestroySession
	begun := time.Now()
	l := f.Start(b, "u1")
	if took := time.Since(begun); took < 2*time.Second {
		t.Errorf("Start on b returned after %v, before a's release (3 s) was done", took)
	}
	if l.ServerSession == "" || l.HeartbeatSession == "u1#1" {
		t.Errorf("lease on b: %+v, want a session of a new generation", l)
	}
	var order []string
	for _, e := range f.CAR.Events() {
		if e.Subject == "u1" && (e.Kind == cartest.EventLocked || e.Kind == cartest.EventDestroyed) {
			order = append(order, string(e.Kind))
		}
	}
	if want := "[locked destroyed locked]"; fmt.Sprint(order) != want {
		t.Errorf("calls for u1 in CAR: %v, want %v", order, want)
	}
}

// The fleet's timings.
const (
	apiTimeout   = 5 * time.Second
	claimTTL     = 10 * time.Second
	pollInterval = 200 * time.Millisecond
	storeTimeout = 500 * time.Millisecond
)

// headLockTakeover: the replica that holds the head lock dies (its store
// cut off, no Shutdown); another replica takes the lock over once it runs
// out and admits the head.
func headLockTakeover(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleet(t, newBackend, 2, 1)
	f.Start(f.Reps[0], "holder")
	f.Start(f.Reps[0], "q1")
	time.Sleep(2 * time.Second)
	victim := f.headHolder()
	if victim == nil {
		t.Fatal("no replica holds the head lock with q1 queued")
	}
	b := f.Reps[0]
	if victim == b {
		b = f.Reps[1]
	}
	victim.Store.Dead.Store(true) // the holder dies
	died := time.Now()
	if err := b.Mgr.Stop(t.Context(), "holder"); err != nil {
		t.Fatal(err)
	}
	// The victim's own Wait dies with it; the user's page hears "ready"
	// through the replica holding its connection. CAR's log says when q1
	// got its concurrency. (Within q1's reconnect window: nobody connects.)
	time.Sleep(15 * time.Second)
	synctest.Wait()
	var admitted time.Time
	for _, e := range f.CAR.Events() {
		if e.Kind == cartest.EventLocked && e.Subject == "q1" {
			admitted = e.Time
		}
	}
	if admitted.IsZero() {
		t.Fatal("q1 never admitted")
	}
	took := admitted.Sub(died)
	ttl := 2*apiTimeout + time.Second + 2*pollInterval
	if took > ttl+2*pollInterval {
		t.Errorf("q1 admitted %v after its head lock's holder died, want within the lock's TTL (%v) and a poll", took, ttl)
	}
	found := false
	for _, u := range b.Mgr.Snapshot().Users {
		if u.UserId == "q1" && u.State == car.LeaseActive {
			found = true
		}
	}
	if !found {
		t.Errorf("q1 on %s: %+v, want active (it admitted q1)", b.Name, b.Mgr.Snapshot().Users)
	}
	if rel := f.Released(); len(rel) != 1 || rel[0] != b.Name+" holder stopped" {
		t.Errorf("releases %v, want the holder's, by %s", rel, b.Name)
	}
	f.noLeaks()
	t.Logf("head taken over %v after its holder %s died", took, victim.Name)
}

// claimerDiesMidRelease: the replica that won the claim stalls in
// DestroySession and loses the store (killed, no Shutdown). The other
// replica, asked to release the same user, waits for the claim to run out,
// claims the same generation again, and finishes the release: OnRelease
// once, the concurrency freed. When the first replica comes back it learns
// that the release is done and forgets it, without a second OnRelease.
func claimerDiesMidRelease(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleet(t, newBackend, 2, 2)
	a, b := f.Reps[0], f.Reps[1]
	f.Start(a, "u1")
	a.Tr.On.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	go a.Mgr.Stop(ctx, "u1")
	<-a.Tr.Hung // a holds the claim and is inside DestroySession
	a.Store.Dead.Store(true)
	claimed := time.Now()
	if err := b.Mgr.Stop(t.Context(), "u1"); err != nil {
		t.Fatalf("b: Stop: %v", err)
	}
	cancel()
	if took := time.Since(claimed); took < claimTTL || took > claimTTL+time.Second {
		t.Errorf("b finished the release %v after a's claim, want just after the claim TTL (%v)", took, claimTTL)
	}
	synctest.Wait()
	if rel := f.Released(); len(rel) != 1 || rel[0] != "r2 u1 stopped" {
		t.Fatalf("releases %v, want one, by r2", rel)
	}
	if n := f.Count(cartest.EventDestroyed, "u1"); n != 1 {
		t.Errorf("CAR destroyed u1 %d times, want 1", n)
	}
	time.Sleep(time.Second) // CAR's cleanup
	if c, held := f.CAR.User("u1"); held {
		t.Errorf("u1 still holds %v", c)
	}
	a.Tr.On.Store(false)
	a.Store.Dead.Store(false)
	time.Sleep(time.Minute)
	synctest.Wait()
	if rel := f.Released(); len(rel) != 1 {
		t.Errorf("releases after a came back: %v", rel)
	}
	if s := a.Mgr.Snapshot(); len(s.Users) != 0 || s.FinishedElsewhere != 1 {
		t.Errorf("a's snapshot: %+v", s)
	}
	if left := f.be.Left(); len(left) != 0 {
		t.Errorf("left in the store: %s", strings.Join(left, ", "))
	}
	f.noLeaks()
}

// storeUnreachable: while the store is unreachable, Start fails at once
// with a *car.StoreError; a release asked for meanwhile is not done, nor
// dropped: Stop returns a *car.ReleasePendingError carrying the store's
// error, and the release is retried until the store is back, then done
// once, with one DestroySession.
func storeUnreachable(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleet(t, newBackend, 1, 2)
	a := f.Reps[0]
	f.Start(a, "u1")
	cause := f.be.Down()
	begun := time.Now()
	_, err := a.Mgr.Start(t.Context(), car.StartRequest{UserId: "u2", UserIp: "10.0.0.1"})
	var se *car.StoreError
	if !errors.As(err, &se) || (cause != nil && !errors.Is(err, cause)) {
		t.Fatalf("Start with the store down: %v, want a *car.StoreError (wrapping %v)", err, cause)
	}
	if d := time.Since(begun); d > f.be.FailFast {
		t.Errorf("Start took %v to fail, want at most %v", d, f.be.FailFast)
	}
	t.Logf("Start: %v", err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	err = a.Mgr.Stop(ctx, "u1")
	cancel()
	var pending *car.ReleasePendingError
	if !errors.As(err, &pending) || !errors.As(err, &se) {
		t.Fatalf("Stop with the store down: %v, want a *car.ReleasePendingError carrying the store error", err)
	}
	time.Sleep(10 * time.Minute)
	if rel := f.Released(); len(rel) != 0 || f.Count(cartest.EventDestroyed, "u1") != 0 {
		t.Fatalf("released without the store: %v", rel)
	}
	f.be.Up()
	back := time.Now()
	time.Sleep(31 * time.Second)
	synctest.Wait()
	destroys := 0
	for _, e := range f.CAR.Events() {
		if e.Kind == cartest.EventCall && e.Action == "DestroySession" {
			destroys++
		}
	}
	if rel := f.Released(); len(rel) != 1 || rel[0] != "r1 u1 stopped" || destroys != 1 {
		t.Fatalf("after the store came back: releases %v, %d DestroySession calls", rel, destroys)
	}
	t.Logf("released %v after the store came back", time.Since(back))
	time.Sleep(time.Second) // CAR's cleanup
	if c, held := f.CAR.User("u1"); held {
		t.Errorf("u1 still holds %v", c)
	}
	if left := f.be.Left(); len(left) != 0 {
		t.Errorf("left in the store: %s", strings.Join(left, ", "))
	}
	f.noLeaks()
}
