package leasestoretest

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
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
}

// RoundTrip holds a DestroySession while h is on, and passes everything
// else to Base.
func (h *HangDestroy) RoundTrip(r *http.Request) (*http.Response, error) {
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
