package redisstore_test

import (
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/redisstore"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// redisBackend gives each replica its own client and Store on one Redis;
// a kill closes the client, so the dead replica reaches Redis no more.
type redisBackend struct {
	client func(t *testing.T) redis.UniversalClient
	obs    *redisstore.Store
}

func (r *redisBackend) replica(t *testing.T, id string) (car.LeaseStore, heartbeat.Store, func()) {
	c := r.client(t)
	st, err := redisstore.New(c, churnProject, redisstore.WithReplicaID(id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st.Leases(), st.Sessions(), func() { _ = c.Close() }
}

func (r *redisBackend) observer(t *testing.T) car.LeaseStore {
	if r.obs == nil {
		st, err := redisstore.New(r.client(t), churnProject, redisstore.WithReplicaID("observer"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		r.obs = st
	}
	return r.obs.Leases()
}

// TestChurnMiniredis runs the churn on the Redis store, on a miniredis
// served over in-memory pipes inside a synctest bubble: the SDK's default
// timeline on a fake clock, Redis TTLs on the same clock.
func TestChurnMiniredis(t *testing.T) {
	users, conc := churnSize([2]int{300, 90}, [2]int{150, 45})
	cfg := fakeTime(churnConfig{seed: churnSeed(1), users: users, concurrencies: conc})
	synctest.Test(t, func(t *testing.T) {
		var m *miniredis.Miniredis
		m, _ = redistest.Pipe(t)
		runChurn(t, &redisBackend{client: func(t *testing.T) redis.UniversalClient { return redistest.PipeClient(t, m) }}, cfg)
	})
}

// realTime is a short timeline for a run in real time: seconds where the
// defaults have minutes. The heartbeat store's owner lease (10 s), refresh
// (3 s) and sweep (1 s) stay as they are.
//
// The idle release must stay well above a refresh interval plus a user's
// touch interval: a replica that dies takes with it the activity it saw
// since its last refresh (up to StoreRefreshInterval), so a user who
// resumes elsewhere can count as idle for that much longer than the truth.
// With the defaults (10 minutes) that is nothing; at 2 s × 2 it released
// users who touched every second (user-0014 and user-0030 in the runs that
// found it): 8 s is twice the worst case.
func realTime(cfg churnConfig) churnConfig {
	const idleThreshold, idleRelease = 4 * time.Second, 2
	cfg.arrivals, cfg.killEvery, cfg.downFor, cfg.faultEvery = 20*time.Second, 20*time.Second, 3*time.Second, time.Second
	cfg.managerOpts = []car.ManagerOption{
		car.WithAPITimeout(5 * time.Second), car.WithReleaseRetryMax(2 * time.Second),
		car.WithReconnectWait(3 * time.Second), car.WithReloadGrace(time.Second),
		car.WithIdleThreshold(idleThreshold), car.WithIdleRelease(idleRelease),
		car.WithQueuePollInterval(200 * time.Millisecond),
	}
	// A ping a second, well inside the 3 s reconnect window: a client
	// counts its window from the last frame it received, pings included,
	// so with the default 10 s pings an idle client whose replica died
	// gave up at once (its last frame was older than the window) and its
	// idle release waited for the dead owner's lease (user-0639#654,
	// user-0931#394 and user-0803#1549 of the full-size runs).
	cfg.heartbeatOpts = []heartbeat.ServerOption{heartbeat.WithPingInterval(time.Second)}
	cfg.carWait, cfg.carCleanup = 40*time.Second, time.Second
	cfg.active, cfg.blip = time.Second, time.Second
	cfg.vanish = 3*time.Second + heartbeat.StoreOwnerTTL + 5*time.Second
	cfg.idle = idleRelease*idleThreshold + 3*time.Second
	cfg.retry, cfg.settle, cfg.touch, cfg.stopWait = 250*time.Millisecond, 30*time.Second, time.Second, 10*time.Second
	cfg.queueWait = 3 * time.Minute
	cfg.realClock = true
	return cfg
}

// TestChurnRedis runs the churn on the Redis store against a real
// redis-server, in real time on a short timeline.
func TestChurnRedis(t *testing.T) {
	if v := os.Getenv("TCC_CHURN"); v != "full" && v != "redis" {
		// In real time its timeline stretches with the machine's load
		// (the users' waits, the idle thresholds are seconds), so it does
		// not run beside other packages: .ci/run gives it a step of its
		// own with TCC_CHURN=redis. The same churn runs on Redis's
		// semantics in a synctest bubble (TestChurnMiniredis) every time.
		t.Skip("the churn on a real redis-server runs in real time, alone: TCC_CHURN=redis (CI's size, a step of .ci/run of its own) or TCC_CHURN=full (1,000 users)")
	}
	srv := redistest.Start(t)
	users, conc := churnSize([2]int{60, 20}, [2]int{60, 20})
	cfg := realTime(churnConfig{seed: churnSeed(1), users: users, concurrencies: conc})
	runChurn(t, &redisBackend{client: func(t *testing.T) redis.UniversalClient { return srv.Client(t) }}, cfg)
}

// TestChurnCluster runs the churn on a Redis Cluster of three real
// redis-server nodes, each replica on a cluster client seeded with every
// node: the project's keys share one hash tag, so every script runs on the
// node of that slot, and the bus's pub/sub reaches every node. In real
// time, like TestChurnRedis, and smaller (its step in .ci/run runs both).
func TestChurnCluster(t *testing.T) {
	if v := os.Getenv("TCC_CHURN"); v != "full" && v != "redis" {
		t.Skip("the churn on a real Redis Cluster runs in real time, alone: TCC_CHURN=redis (a step of .ci/run of its own) or TCC_CHURN=full")
	}
	cl := redistest.StartCluster(t, 3)
	users, conc := churnSize([2]int{30, 10}, [2]int{30, 10})
	cfg := realTime(churnConfig{seed: churnSeed(3), users: users, concurrencies: conc})
	runChurn(t, &redisBackend{client: func(t *testing.T) redis.UniversalClient { return cl.Client(t) }}, cfg)
}
