package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// memoryBackend shares the main module's in-memory stores between the
// replicas of one process: the harness's baseline.
type memoryBackend struct {
	leases   *car.MemoryLeaseStore
	sessions *heartbeat.MemoryStore
}

func newMemoryBackend() *memoryBackend {
	return &memoryBackend{leases: car.NewMemoryLeaseStore(), sessions: heartbeat.NewMemoryStore()}
}

func (m *memoryBackend) replica(_ *testing.T, id string) (car.LeaseStore, heartbeat.Store, func()) {
	dead := &atomic.Bool{}
	ds := &deadSessions{Store: m.sessions.Replica(id), dead: dead}
	return &deadLeases{LeaseStore: m.leases.Replica(id), dead: dead}, ds,
		func() { dead.Store(true); ds.unlisten() }
}

func (m *memoryBackend) observer(*testing.T) car.LeaseStore { return m.leases.Replica("observer") }

// deadLeases is a replica's LeaseStore that a kill cuts off.
type deadLeases struct {
	car.LeaseStore
	dead *atomic.Bool
}

func (d *deadLeases) err(op string) error {
	if d.dead.Load() {
		return &car.StoreError{Op: op, Err: errDead}
	}
	return nil
}

func (d *deadLeases) Create(ctx context.Context, c car.CreateLease) (car.LeaseRecord, bool, error) {
	if err := d.err("create"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	return d.LeaseStore.Create(ctx, c)
}

func (d *deadLeases) List(ctx context.Context) ([]car.LeaseRecord, error) {
	if err := d.err("list"); err != nil {
		return nil, err
	}
	return d.LeaseStore.List(ctx)
}

func (d *deadLeases) Get(ctx context.Context, u string) (car.LeaseRecord, bool, error) {
	if err := d.err("get"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	return d.LeaseStore.Get(ctx, u)
}

func (d *deadLeases) Update(ctx context.Context, u string, g uint64, up car.LeaseUpdate) (car.LeaseRecord, error) {
	if err := d.err("update"); err != nil {
		return car.LeaseRecord{}, err
	}
	return d.LeaseStore.Update(ctx, u, g, up)
}

func (d *deadLeases) Claim(ctx context.Context, r car.ClaimRequest) (car.Claim, error) {
	if err := d.err("claim"); err != nil {
		return car.Claim{}, err
	}
	return d.LeaseStore.Claim(ctx, r)
}

func (d *deadLeases) Finish(ctx context.Context, u string, g uint64) (bool, error) {
	if err := d.err("finish"); err != nil {
		return false, err
	}
	return d.LeaseStore.Finish(ctx, u, g)
}

func (d *deadLeases) Positions(ctx context.Context, u []string) ([]int, error) {
	if err := d.err("positions"); err != nil {
		return nil, err
	}
	return d.LeaseStore.Positions(ctx, u)
}

func (d *deadLeases) QueueLen(ctx context.Context) (int, error) {
	if err := d.err("queue length"); err != nil {
		return 0, err
	}
	return d.LeaseStore.QueueLen(ctx)
}

func (d *deadLeases) LockHead(ctx context.Context, ttl time.Duration) (car.LeaseRecord, bool, error) {
	if err := d.err("lock head"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	return d.LeaseStore.LockHead(ctx, ttl)
}

func (d *deadLeases) UnlockHead(ctx context.Context) error {
	if err := d.err("unlock head"); err != nil {
		return err
	}
	return d.LeaseStore.UnlockHead(ctx)
}

func (d *deadLeases) Watch(f func(car.LeaseEvent)) (stop func()) {
	return d.LeaseStore.Watch(func(ev car.LeaseEvent) {
		if !d.dead.Load() {
			f(ev)
		}
	})
}

// deadSessions is a replica's heartbeat Store that a kill cuts off. A
// killed process listens no more, as its Redis subscription ends with its
// connection: the store then keeps the notices it would route there.
type deadSessions struct {
	heartbeat.Store
	dead *atomic.Bool

	mu   sync.Mutex
	stop func()
}

func (d *deadSessions) unlisten() {
	d.mu.Lock()
	stop := d.stop
	d.stop = nil
	d.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (d *deadSessions) err(op string) error {
	if d.dead.Load() {
		return &heartbeat.StoreError{Op: op, Err: errDead}
	}
	return nil
}

func (d *deadSessions) Listen(deliver func(heartbeat.StoreMessage)) (stop func()) {
	stop = d.Store.Listen(func(m heartbeat.StoreMessage) {
		if !d.dead.Load() {
			deliver(m)
		}
	})
	d.mu.Lock()
	d.stop = stop
	d.mu.Unlock()
	return d.unlisten
}

func (d *deadSessions) Open(ctx context.Context, id, join string, tm heartbeat.Timing) error {
	if err := d.err("open"); err != nil {
		return err
	}
	return d.Store.Open(ctx, id, join, tm)
}

func (d *deadSessions) Claim(ctx context.Context, id, used, resume string) (heartbeat.Claim, error) {
	if err := d.err("claim"); err != nil {
		return heartbeat.Claim{}, err
	}
	return d.Store.Claim(ctx, id, used, resume)
}

func (d *deadSessions) Detach(ctx context.Context, id string, dt heartbeat.Detach) error {
	if err := d.err("detach"); err != nil {
		return err
	}
	return d.Store.Detach(ctx, id, dt)
}

func (d *deadSessions) Refresh(ctx context.Context, held []heartbeat.Held) (heartbeat.RefreshResult, error) {
	if err := d.err("refresh"); err != nil {
		return heartbeat.RefreshResult{}, err
	}
	return d.Store.Refresh(ctx, held)
}

func (d *deadSessions) Touch(ctx context.Context, id string) error {
	if err := d.err("touch"); err != nil {
		return err
	}
	return d.Store.Touch(ctx, id)
}

func (d *deadSessions) Notify(ctx context.Context, id, key string, frame []byte) error {
	if err := d.err("notify"); err != nil {
		return err
	}
	return d.Store.Notify(ctx, id, key, frame)
}

func (d *deadSessions) End(ctx context.Context, id, reason string) error {
	if err := d.err("end"); err != nil {
		return err
	}
	return d.Store.End(ctx, id, reason)
}

func (d *deadSessions) Sweep(ctx context.Context, limit int) ([]heartbeat.Due, error) {
	if err := d.err("sweep"); err != nil {
		return nil, err
	}
	return d.Store.Sweep(ctx, limit)
}

// TestChurnMemory runs the churn on the main module's in-memory stores.
func TestChurnMemory(t *testing.T) {
	users, conc := churnSize([2]int{200, 60}, [2]int{150, 45})
	cfg := fakeTime(churnConfig{seed: churnSeed(1), users: users, concurrencies: conc})
	synctest.Test(t, func(t *testing.T) { runChurn(t, newMemoryBackend(), cfg) })
}
