package redisstore

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/internal/leasestoretest"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// Regression tests for what the churn on a real redis-server found
// (TestChurnRedis), each on miniredis in a synctest bubble.

// hbFleet is a fleet with both halves on Redis (car.WithStore) and a
// heartbeat listener per replica behind one router.
func hbFleet(t *testing.T, n, packSize int, opts ...car.ManagerOption) (*leaseFleet, *leasestoretest.Router, *miniredis.Miniredis) {
	m, _ := redistest.Pipe(t)
	key := bytes.Repeat([]byte{9}, 32)
	f := newLeaseFleetWith(t, n, packSize, func() redis.UniversalClient { return redistest.PipeClient(t, m) }, nil,
		func(st *Store) car.ManagerOption { return car.WithStore(st) },
		append([]car.ManagerOption{car.WithHeartbeat(heartbeat.WithTokenKeys(key))}, opts...)...)
	return f, f.Router("r1"), m
}

// snapUser returns user's line in a replica's Snapshot.
func snapUser(r *leasestoretest.Replica, user string) (car.UserSnapshot, bool) {
	for _, u := range r.Mgr.Snapshot().Users {
		if u.UserId == user {
			return u, true
		}
	}
	return car.UserSnapshot{}, false
}

// TestQueuedUserAdmittedElsewhereStaysOnItsReplica: a user queued through
// r2, whose client is connected to r2, is admitted by r1's head runner.
// r2, which holds the connection, keeps the user on its books, active and
// connected: it used to forget the entry when its position poll saw the
// admission ("the admitting replica has it now"), so no replica reported
// the user both active and connected, although nothing had happened to
// its connection.
func TestQueuedUserAdmittedElsewhereStaysOnItsReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, rt, m := hbFleet(t, 2, 1)
		time.Sleep(time.Second)
		// r1 is the replica whose runner holds the head lock (whichever
		// took it first): it admits the queue's head.
		r1, r2 := f.Reps[0], f.Reps[1]
		if h, _ := m.Get(f.store(r1).keys.queueHead()); h == f.store(r2).replica {
			r1, r2 = r2, r1
		} else if h != f.store(r1).replica {
			t.Fatalf("head lock held by %q, want one of the replicas", h)
		}
		f.Start(r1, "holder")
		l := f.Start(r2, "u2")
		if l.QueuePosition != 1 {
			t.Fatalf("u2: position %d, want 1", l.QueuePosition)
		}
		rt.Move(r2.Name, false)
		ready := make(chan struct{}, 1)
		rt.Connect(t, l, hbclient.OnNotice(func(n heartbeat.Notice) {
			if n.Kind == heartbeat.NoticeReady {
				ready <- struct{}{}
			}
		}))
		time.Sleep(time.Second)
		if err := r1.Mgr.Stop(t.Context(), "holder"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("u2: no ready notice")
		}
		time.Sleep(2 * time.Second) // several position polls on r2
		synctest.Wait()
		if u, ok := snapUser(r1, "u2"); !ok || u.State != car.LeaseActive || u.Connected {
			t.Fatalf("%s did not admit u2 (the premise): %+v (found %v)", r1.Name, u, ok)
		}
		u, ok := snapUser(r2, "u2")
		if !ok || u.State != car.LeaseActive || !u.Connected || u.HeartbeatSession != l.HeartbeatSession || u.QueuePosition != 0 {
			t.Fatalf("%s, which holds u2's connection: %+v (found %v), want active and connected", r2.Name, u, ok)
		}
		if s := r2.Mgr.Snapshot(); s.Active != 1 || s.Waiting != 0 {
			t.Errorf("%s: %d active, %d waiting, want 1 and 0", r2.Name, s.Active, s.Waiting)
		}
		// The user leaves through r2: released once.
		if err := r2.Mgr.Stop(t.Context(), "u2"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got := 0
		for _, r := range f.Released() {
			if r == r2.Name+" u2 stopped" {
				got++
			}
		}
		if got != 1 {
			t.Errorf("releases %v, want u2 stopped once by %s", f.Released(), r2.Name)
		}
	})
}
