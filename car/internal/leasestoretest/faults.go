package leasestoretest

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// ErrDead is what a killed replica's store calls fail with.
var ErrDead = errors.New("connection refused")

// Killable is one replica's view of the store, which a test can cut off,
// as when that replica's process dies (without Shutdown) or its network to
// the store goes, and bring back.
type Killable struct {
	car.LeaseStore
	// Dead: every call fails with a *car.StoreError wrapping ErrDead, and
	// the replica hears no store events.
	Dead atomic.Bool
	// Deaf: this replica hears no store events, its position reads fail
	// and it never gets the head lock, as a replica that has not caught
	// up yet with what another replica did.
	Deaf atomic.Bool
	// OnHead, if set, is told when this replica takes or renews the head
	// lock (true) and when it gives it up (false).
	OnHead func(held bool)
}

// Watch passes the store's events on while the replica is alive and not
// deaf.
func (k *Killable) Watch(f func(car.LeaseEvent)) (stop func()) {
	return k.LeaseStore.Watch(func(ev car.LeaseEvent) {
		if !k.Deaf.Load() && !k.Dead.Load() {
			f(ev)
		}
	})
}

func (k *Killable) check(op string) error {
	if k.Dead.Load() {
		return &car.StoreError{Op: op, Err: ErrDead}
	}
	return nil
}

// Create is the store's, unless the replica is dead.
func (k *Killable) Create(ctx context.Context, c car.CreateLease) (car.LeaseRecord, bool, error) {
	if err := k.check("create"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	return k.LeaseStore.Create(ctx, c)
}

// List is the store's, unless the replica is dead.
func (k *Killable) List(ctx context.Context) ([]car.LeaseRecord, error) {
	if err := k.check("list"); err != nil {
		return nil, err
	}
	return k.LeaseStore.List(ctx)
}

// Get is the store's, unless the replica is dead.
func (k *Killable) Get(ctx context.Context, u string) (car.LeaseRecord, bool, error) {
	if err := k.check("get"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	return k.LeaseStore.Get(ctx, u)
}

// Update is the store's, unless the replica is dead.
func (k *Killable) Update(ctx context.Context, u string, g uint64, up car.LeaseUpdate) (car.LeaseRecord, error) {
	if err := k.check("update"); err != nil {
		return car.LeaseRecord{}, err
	}
	return k.LeaseStore.Update(ctx, u, g, up)
}

// Claim is the store's, unless the replica is dead.
func (k *Killable) Claim(ctx context.Context, r car.ClaimRequest) (car.Claim, error) {
	if err := k.check("claim"); err != nil {
		return car.Claim{}, err
	}
	return k.LeaseStore.Claim(ctx, r)
}

// Finish is the store's, unless the replica is dead.
func (k *Killable) Finish(ctx context.Context, u string, g uint64) (bool, error) {
	if err := k.check("finish"); err != nil {
		return false, err
	}
	return k.LeaseStore.Finish(ctx, u, g)
}

// Positions is the store's, unless the replica is dead or deaf.
func (k *Killable) Positions(ctx context.Context, u []string) ([]int, error) {
	if err := k.check("positions"); err != nil {
		return nil, err
	}
	if k.Deaf.Load() {
		return nil, &car.StoreError{Op: "positions", Err: ErrDead}
	}
	return k.LeaseStore.Positions(ctx, u)
}

// QueueLen is the store's, unless the replica is dead.
func (k *Killable) QueueLen(ctx context.Context) (int, error) {
	if err := k.check("queue length"); err != nil {
		return 0, err
	}
	return k.LeaseStore.QueueLen(ctx)
}

// LockHead is the store's, unless the replica is dead or deaf.
func (k *Killable) LockHead(ctx context.Context, ttl time.Duration) (car.LeaseRecord, bool, error) {
	if err := k.check("lock head"); err != nil {
		return car.LeaseRecord{}, false, err
	}
	if k.Deaf.Load() {
		return car.LeaseRecord{}, false, car.ErrHeadLocked
	}
	rec, ok, err := k.LeaseStore.LockHead(ctx, ttl)
	if err == nil && k.OnHead != nil {
		k.OnHead(true)
	}
	return rec, ok, err
}

// UnlockHead is the store's, unless the replica is dead.
func (k *Killable) UnlockHead(ctx context.Context) error {
	if err := k.check("unlock head"); err != nil {
		return err
	}
	err := k.LeaseStore.UnlockHead(ctx)
	if err == nil && k.OnHead != nil {
		k.OnHead(false)
	}
	return err
}

// HangDestroy is a transport that holds DestroySession calls until their
// context ends while it is on, as a replica stalled (or killed) in the
// middle of a release.
type HangDestroy struct {
	Base http.RoundTripper
	On   atomic.Bool
	// Hung gets a value per held call, if it has room.
	Hung chan struct{}
	// Passed counts the DestroySession calls sent on.
	Passed atomic.Int32
	// Dead: every call fails, as from a killed process.
	Dead atomic.Bool
}

// RoundTrip fails every call while the replica is dead, holds a
// DestroySession while h is on, and passes everything else to Base.
func (h *HangDestroy) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.Dead.Load() {
		return nil, ErrDead
	}
	if r.Header.Get("X-Tc-Action") == "DestroySession" {
		if h.On.Load() {
			select {
			case h.Hung <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		h.Passed.Add(1)
	}
	return h.Base.RoundTrip(r)
}

// KillableSessions is one replica's view of a shared heartbeat session
// store, which a test can cut off as when the replica's process dies.
type KillableSessions struct {
	heartbeat.Store
	// Dead: every call fails with a *heartbeat.StoreError wrapping
	// ErrDead, and the replica hears no store messages.
	Dead atomic.Bool

	mu   sync.Mutex
	stop func()
}

// Kill makes the store dead and stops the replica's listening, as a
// killed process's subscription ends with its connection: the store then
// keeps the notices it would have routed there.
func (k *KillableSessions) Kill() {
	k.Dead.Store(true)
	k.unlisten()
}

func (k *KillableSessions) check(op string) error {
	if k.Dead.Load() {
		return &heartbeat.StoreError{Op: op, Err: ErrDead}
	}
	return nil
}

// Listen passes the store's messages on while the replica is alive.
func (k *KillableSessions) Listen(deliver func(heartbeat.StoreMessage)) (stop func()) {
	stop = k.Store.Listen(func(m heartbeat.StoreMessage) {
		if !k.Dead.Load() {
			deliver(m)
		}
	})
	k.mu.Lock()
	k.stop = stop
	k.mu.Unlock()
	return k.unlisten
}

func (k *KillableSessions) unlisten() {
	k.mu.Lock()
	stop := k.stop
	k.stop = nil
	k.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Open is the store's, unless the replica is dead.
func (k *KillableSessions) Open(ctx context.Context, id, join string, tm heartbeat.Timing) error {
	if err := k.check("open"); err != nil {
		return err
	}
	return k.Store.Open(ctx, id, join, tm)
}

// Claim is the store's, unless the replica is dead.
func (k *KillableSessions) Claim(ctx context.Context, id, used, resume string) (heartbeat.Claim, error) {
	if err := k.check("claim"); err != nil {
		return heartbeat.Claim{}, err
	}
	return k.Store.Claim(ctx, id, used, resume)
}

// Detach is the store's, unless the replica is dead.
func (k *KillableSessions) Detach(ctx context.Context, id string, d heartbeat.Detach) error {
	if err := k.check("detach"); err != nil {
		return err
	}
	return k.Store.Detach(ctx, id, d)
}

// Refresh is the store's, unless the replica is dead.
func (k *KillableSessions) Refresh(ctx context.Context, held []heartbeat.Held) (heartbeat.RefreshResult, error) {
	if err := k.check("refresh"); err != nil {
		return heartbeat.RefreshResult{}, err
	}
	return k.Store.Refresh(ctx, held)
}

// Touch is the store's, unless the replica is dead.
func (k *KillableSessions) ReportIdle(ctx context.Context, id string, epoch uint64, activityAge time.Duration, times int) (bool, error) {
	if err := k.check("report idle"); err != nil {
		return false, err
	}
	return k.Store.ReportIdle(ctx, id, epoch, activityAge, times)
}

func (k *KillableSessions) Touch(ctx context.Context, id string) error {
	if err := k.check("touch"); err != nil {
		return err
	}
	return k.Store.Touch(ctx, id)
}

// Notify is the store's, unless the replica is dead.
func (k *KillableSessions) Notify(ctx context.Context, id, key string, frame []byte) error {
	if err := k.check("notify"); err != nil {
		return err
	}
	return k.Store.Notify(ctx, id, key, frame)
}

// End is the store's, unless the replica is dead.
func (k *KillableSessions) End(ctx context.Context, id, reason string) error {
	if err := k.check("end"); err != nil {
		return err
	}
	return k.Store.End(ctx, id, reason)
}

// Sweep is the store's, unless the replica is dead.
func (k *KillableSessions) Sweep(ctx context.Context, limit int) ([]heartbeat.Due, error) {
	if err := k.check("sweep"); err != nil {
		return nil, err
	}
	return k.Store.Sweep(ctx, limit)
}
