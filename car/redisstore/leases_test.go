package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/car/internal/leasestoretest"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

const leaseProject = "cap-leases"

// leaseFleet is a leasestoretest.Fleet whose replicas each have their
// own Store on one Redis.
type leaseFleet struct {
	*leasestoretest.Fleet
	stores map[string]*Store // by replica name
}

// store returns replica r's Store.
func (f *leaseFleet) store(r *leasestoretest.Replica) *Store { return f.stores[r.Name] }

// newLeaseFleetWith starts n replicas, giving each manager its Store (on
// the client that client returns, with the options of storeOpts if not
// nil) with storeOpt, and opts.
func newLeaseFleetWith(t *testing.T, n, packSize int, client func() redis.UniversalClient, storeOpts func(name string) []Option, storeOpt func(*Store) car.ManagerOption, opts ...car.ManagerOption) *leaseFleet {
	t.Helper()
	f := &leaseFleet{stores: map[string]*Store{}}
	f.Fleet = leasestoretest.NewFleet(t, leasestoretest.FleetConfig{
		Project:           leaseProject,
		Replicas:          n,
		PackSize:          packSize,
		CAROptions:        []cartest.Option{cartest.WithCleanupDelay(200 * time.Millisecond)},
		ShutdownTimeout:   5 * time.Second,
		PendingAtShutdown: true,
		Options: func(name string) []car.ManagerOption {
			sopts := []Option{WithReplicaID(name)}
			if storeOpts != nil {
				sopts = append(sopts, storeOpts(name)...)
			}
			st, err := New(client(), leaseProject, sopts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			f.stores[name] = st
			return append([]car.ManagerOption{
				storeOpt(st),
				car.WithAPITimeout(2 * time.Second),
				car.WithReleaseClaimTTL(3 * time.Second),
				car.WithReleaseRetryMax(2 * time.Second),
				car.WithQueuePollInterval(200 * time.Millisecond),
				car.WithStoreTimeout(500 * time.Millisecond),
			}, opts...)
		},
	})
	return f
}

// stopThroughAll stops user through every replica at once, failing the
// test if any Stop fails: exactly one of them wins the release claim.
func stopThroughAll(t *testing.T, user string, reps ...*leasestoretest.Replica) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(reps))
	for j, r := range reps {
		wg.Go(func() { errs[j] = r.Mgr.Stop(t.Context(), user) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%s: Stop through %d replicas at once: %v", user, len(reps), err)
	}
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
	a, b := f.Reps[0], f.Reps[1]
	for i := range 5 {
		user := fmt.Sprintf("u%d", i)
		f.Start(f.Reps[i%2], user)
		stopThroughAll(t, user, a, b)
		time.Sleep(300 * time.Millisecond) // CAR's cleanup (200 ms)
	}
	if rel := f.Released(); len(rel) != 5 || f.Count(cartest.EventDestroyed, "") != 5 {
		t.Fatalf("releases %v, %d destroyed, want 5 and 5", rel, f.Count(cartest.EventDestroyed, ""))
	}

	f.Start(a, "v1")
	f.Start(b, "w1")
	srv.Kill()
	begun := time.Now()
	_, err := a.Mgr.Start(t.Context(), car.StartRequest{UserId: "v2", UserIp: "10.0.0.1"})
	var se *car.StoreError
	if !errors.As(err, &se) {
		t.Fatalf("Start with Redis killed: %v, want a *car.StoreError", err)
	}
	if d := time.Since(begun); d > time.Second {
		t.Errorf("Start took %v to fail", d)
	}
	t.Logf("Start with Redis killed failed after %v: %v", time.Since(begun).Round(time.Millisecond), err)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	err = a.Mgr.Stop(ctx, "v1")
	cancel()
	var pending *car.ReleasePendingError
	if !errors.As(err, &pending) {
		t.Fatalf("Stop with Redis killed: %v, want a *car.ReleasePendingError", err)
	}
	srv.Restart() // empty
	deadline := time.Now().Add(10 * time.Second)
	for len(f.Released()) < 6 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if rel := f.Released(); len(rel) != 6 || rel[5] != "r1 v1 stopped" || f.Count(cartest.EventDestroyed, "v1") != 1 {
		t.Fatalf("after Redis came back empty: releases %v, %d destroyed", rel, f.Count(cartest.EventDestroyed, "v1"))
	}
	for len(logs.count(slog.LevelError, rebuiltMsg)) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // b rebuilds at its queue runner's next poll
	}
	if n := logs.count(slog.LevelError, rebuiltMsg); n["r1"] != 1 || n["r2"] != 1 {
		t.Errorf("the data loss logged %v times by replica, want once each", n)
	}
	if rec, ok, err := f.store(a).Leases().Get(t.Context(), "w1"); err != nil || !ok || rec.State != car.LeaseActive {
		t.Fatalf("w1 after the rebuild: %+v %v %v, want active", rec, ok, err)
	}
	if err := a.Mgr.Stop(t.Context(), "w1"); err != nil {
		t.Fatalf("Stop(w1) after the rebuild: %v", err)
	}
	for len(f.Released()) < 7 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // OnRelease runs after Stop returns
	}
	if rel := f.Released(); len(rel) != 7 || rel[6] != "r1 w1 stopped" || f.Count(cartest.EventDestroyed, "w1") != 1 {
		t.Fatalf("w1 after the rebuild: releases %v, %d destroyed", rel, f.Count(cartest.EventDestroyed, "w1"))
	}
	l := f.Start(b, "v3")
	if _, gen, _ := car.ParseSessionID(l.HeartbeatSession); gen < 1<<32 {
		t.Errorf("a generation from before the data loss may be handed out again: %s", l.HeartbeatSession)
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
		leasestoretest.ResumeElsewhereThenExpireOnce(t, f.Fleet, f.Router("r1"))
	})
}
