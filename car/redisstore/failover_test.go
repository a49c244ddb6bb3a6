package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
)

// TestLeasesSentinelFailover runs two replicas on a Sentinel deployment (a
// primary, a replica of it, a Sentinel; failover clients), in real time.
// With the replica in sync, the Sentinel promotes it: the leases of both
// replicas survive, a Stop through either replica releases each once, a
// Start after the failover gets a generation past every earlier one, and
// the failover is not taken for a data loss (nothing rebuilt, nothing
// logged at error level).
func TestLeasesSentinelFailover(t *testing.T) {
	sen := redistest.StartSentinel(t)
	logs := &logRecorder{}
	f := newLeaseFleetWith(t, 2, 3, func() redis.UniversalClient { return sen.Client(t) },
		func(name string) []Option { return []Option{WithLogger(logs.logger(name))} },
		func(st *Store) car.ManagerOption { return car.WithLeaseStore(st.Leases()) })
	a, b := f.Reps[0], f.Reps[1]
	la, lb := f.Start(a, "v1"), f.Start(b, "w1")
	sen.Sync(t)
	before := sen.Primary(t)
	sen.Failover(t)
	if sen.Primary(t) == before {
		t.Fatal("the Sentinel reports the same primary after the failover")
	}

	// The first calls after the switch may meet the old primary, now a
	// replica (READONLY), until the clients follow the Sentinel: Start
	// then fails with a *car.StoreError, and the next one goes through.
	deadline := time.Now().Add(10 * time.Second)
	var lx *car.Lease
	failed := 0
	for lx == nil {
		l, err := b.Mgr.Start(t.Context(), car.StartRequest{UserId: "x1", UserIp: "10.0.0.1", ClientSession: "cs-x1"})
		var se *car.StoreError
		switch {
		case err == nil:
			lx = l
		case errors.As(err, &se) && time.Now().Before(deadline):
			failed++
			time.Sleep(100 * time.Millisecond)
		default:
			t.Fatalf("Start(x1) after the failover (%d failed before): %v", failed, err)
		}
	}
	t.Logf("after the failover, %d Start(s) failed with a store error before one went through", failed)
	for _, l := range []*car.Lease{la, lb} {
		_, g, _ := car.ParseSessionID(l.HeartbeatSession)
		if _, gx, _ := car.ParseSessionID(lx.HeartbeatSession); gx <= g {
			t.Errorf("x1's generation %d after the failover is not past %s's", gx, l.HeartbeatSession)
		}
	}

	// Each lease, whoever holds it, is stopped through both replicas at
	// once: one release each.
	for _, user := range []string{"v1", "w1", "x1"} {
		stopThroughAll(t, user, a, b)
	}
	for len(f.Released()) < 3 && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(10 * time.Millisecond) // OnRelease runs after Stop returns
	}
	got := map[string]string{} // user: reason
	for _, rel := range f.Released() {
		var rep, user, reason string
		if _, err := fmt.Sscan(rel, &rep, &user, &reason); err == nil {
			got[user] = reason
		}
	}
	if rel := f.Released(); len(rel) != 3 || fmt.Sprint(got) != "map[v1:stopped w1:stopped x1:stopped]" {
		t.Errorf("releases after the failover %v, want one each of v1, w1, x1, stopped", rel)
	}
	for _, user := range []string{"v1", "w1", "x1"} {
		if n := f.Count(cartest.EventDestroyed, user); n != 1 {
			t.Errorf("%s: destroyed %d times, want once", user, n)
		}
	}
	if n := logs.count(slog.LevelError, ""); len(n) != 0 {
		t.Errorf("the failover logged at error level (taken for a data loss?): %v", n)
	}
}
