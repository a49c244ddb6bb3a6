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
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { c.run(t, newBackend) })
		})
	}
}

// replica is one backend replica: its manager and its view of the store.
type replica struct {
	name string
	mgr  *car.SessionManager
}

// fleet is several replicas on one store and one CAR.
type fleet struct {
	t        *testing.T
	be       Backend
	car      *cartest.Server
	reps     []*replica
	mu       sync.Mutex
	releases []string // "replica user reason"
}

func newFleet(t *testing.T, newBackend func(*testing.T) Backend, n, packSize int) *fleet {
	t.Helper()
	carNet := memnet.Listen("car")
	srv := cartest.Start(t, cartest.WithListener(carNet),
		cartest.WithProject(cartest.Project{ProjectId: Project, ReconnectWait: 2 * time.Minute}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: packSize, Projects: []string{Project}}),
		cartest.WithCleanupDelay(500*time.Millisecond), cartest.WithoutRateLimits())
	f := &fleet{t: t, be: newBackend(t), car: srv}
	for i := range n {
		name := fmt.Sprintf("r%d", i+1)
		client := srv.Client(car.WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: carNet.DialContext}}),
			car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		mgr, err := car.NewSessionManager(client, Project,
			car.WithLeaseStore(f.be.Replica(name)),
			car.WithAPITimeout(5*time.Second),
			car.WithReleaseClaimTTL(10*time.Second),
			car.WithQueuePollInterval(200*time.Millisecond),
			car.WithDestroyRetry(car.RetryPolicy{MaxAttempts: 1}),
			car.OnRelease(func(r car.Release) {
				f.mu.Lock()
				f.releases = append(f.releases, name+" "+r.UserId+" "+string(r.Reason))
				f.mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		f.reps = append(f.reps, &replica{name: name, mgr: mgr})
		t.Cleanup(func() {
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

// count counts CAR's model events of a kind for user.
func (f *fleet) count(kind cartest.EventKind, user string) int {
	n := 0
	for _, e := range f.car.Events() {
		if e.Kind == kind && e.Subject == user {
			n++
		}
	}
	return n
}

// releaseClaimedOnce: two replicas release the same lease at the same
// moment (Stop on each): exactly one wins the claim, calls DestroySession
// and runs OnRelease; both Stops return when it is done; nothing of the
// leases is left in the store.
func releaseClaimedOnce(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleet(t, newBackend, 2, 2)
	a, b := f.reps[0], f.reps[1]
	const rounds = 20
	for i := range rounds {
		user := fmt.Sprintf("u%d", i)
		f.start(f.reps[i%2], user) // started on either replica
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, r := range []*replica{a, b} {
			wg.Go(func() { errs[j] = r.mgr.Stop(t.Context(), user) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("%s: Stop: %v, %v", user, errs[0], errs[1])
		}
		time.Sleep(time.Second) // CAR's cleanup
	}
	synctest.Wait()
	rel := f.released()
	if len(rel) != rounds {
		t.Fatalf("%d releases for %d leases: %v", len(rel), rounds, rel)
	}
	for i := range rounds {
		if n := f.count(cartest.EventDestroyed, fmt.Sprintf("u%d", i)); n != 1 {
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
	f.start(f.reps[0], "holder")
	const n = 16
	leases := make([]*car.Lease, n)
	for i := range n {
		r := f.reps[i%3]
		leases[i] = f.start(r, fmt.Sprintf("q%02d", i))
		if leases[i].QueuePosition != i+1 {
			t.Fatalf("q%02d on %s: position %d, want %d", i, r.name, leases[i].QueuePosition, i+1)
		}
	}
	for i := range n { // everyone polls through the next replica
		if l := f.start(f.reps[(i+1)%3], fmt.Sprintf("q%02d", i)); l.QueuePosition != i+1 {
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
		if err := f.reps[(k+2)%3].mgr.Stop(t.Context(), current); err != nil {
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
	a, b := f.reps[0], f.reps[1]
	f.start(a, "u1")
	if err := f.car.InjectFault("DestroySession", cartest.Fault{Latency: 3 * time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	go a.mgr.Stop(t.Context(), "u1")
	time.Sleep(100 * time.Millisecond) // a is in DestroySession
	begun := time.Now()
	l := f.start(b, "u1")
	if took := time.Since(begun); took < 2*time.Second {
		t.Errorf("Start on b returned after %v, before a's release (3 s) was done", took)
	}
	if l.ServerSession == "" || l.HeartbeatSession == "u1#1" {
		t.Errorf("lease on b: %+v, want a session of a new generation", l)
	}
	var order []string
	for _, e := range f.car.Events() {
		if e.Subject == "u1" && (e.Kind == cartest.EventLocked || e.Kind == cartest.EventDestroyed) {
			order = append(order, string(e.Kind))
		}
	}
	if want := "[locked destroyed locked]"; fmt.Sprint(order) != want {
		t.Errorf("calls for u1 in CAR: %v, want %v", order, want)
	}
}
