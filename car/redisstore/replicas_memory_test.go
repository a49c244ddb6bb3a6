package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/internal/leasestoretest"
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
	ls := &leasestoretest.Killable{LeaseStore: m.leases.Replica(id)}
	ds := &deadSessions{Store: m.sessions.Replica(id), dead: &ls.Dead}
	return ls, ds, func() { ls.Dead.Store(true); ds.unlisten() }
}

func (m *memoryBackend) observer(*testing.T) car.LeaseStore { return m.leases.Replica("observer") }

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

func (d *deadSessions) ReportIdle(ctx context.Context, id string, epoch uint64, activityAge time.Duration, times int) (bool, error) {
	if err := d.err("report idle"); err != nil {
		return false, err
	}
	return d.Store.ReportIdle(ctx, id, epoch, activityAge, times)
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
