package redisstore

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
)

// afterRead is a go-redis hook that runs then once, right after the first
// script call that succeeded with key among its keys: a test puts another
// replica's calls between a read and what the reader does next.
type afterRead struct {
	key   string
	armed atomic.Bool
	fired atomic.Bool
	then  func()
}

func (h *afterRead) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *afterRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *afterRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		// A failed EVALSHA (NOSCRIPT) read nothing: wait for the EVAL. A
		// read that found no lease answers nil.
		if (err == nil || errors.Is(err, redis.Nil)) && (cmd.Name() == "evalsha" || cmd.Name() == "eval") &&
			slices.Contains(cmd.Args(), any(h.key)) && h.armed.CompareAndSwap(true, false) {
			h.then()
			h.fired.Store(true)
		}
		return err
	}
}

// TestOrphansKeepsAClaimMadeMeanwhile: Orphans finds a user in the claims
// index whose lease is gone (finished meanwhile, or left over) and drops
// the entry. If, between its read of the record and the drop, another
// replica starts a new generation of that user and claims its release, the
// new claim's entry stays: once that claim runs out with its claimer dead,
// the sweep finds the release. (Orphans used to drop the entry with a
// plain ZREM after the read, losing the new claim from the index: the
// release was then left to whoever else had a reason to retry it.)
func TestOrphansKeepsAClaimMadeMeanwhile(t *testing.T) {
	ctx := t.Context()
	m := redistest.Mini(t)
	hooked := redistest.MiniClient(t, m)
	a, err := New(hooked, leaseProject, WithReplicaID("a"), withExactID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b, err := New(redistest.MiniClient(t, m), leaseProject, WithReplicaID("b"), withExactID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	claims := a.keys.leaseClaims()

	// A left-over entry for u1, and one for u2 that stays stale.
	start := time.Now()
	m.SetTime(start)
	for _, u := range []string{"u1", "u2"} {
		if _, err := m.ZAdd(claims, 0, u); err != nil {
			t.Fatal(err)
		}
	}
	var gen uint64
	h := &afterRead{key: a.keys.lease("u1"), then: func() {
		// b, meanwhile: a new lease of u1, released at once; its claim
		// lasts a minute.
		rec, created, err := b.Leases().Create(ctx, car.CreateLease{
			Request: car.StartRequest{UserId: "u1", UserIp: "10.0.0.1"}, Hold: time.Minute})
		if err != nil || !created {
			t.Errorf("b: Create: %v (created %v)", err, created)
			return
		}
		c, err := b.Leases().Claim(ctx, car.ClaimRequest{UserId: "u1", Generation: rec.Generation, Reason: car.ReleaseStopped, TTL: time.Minute})
		if err != nil || !c.Won {
			t.Errorf("b: Claim: %+v, %v", c, err)
		}
		gen = rec.Generation
	}}
	hooked.AddHook(h)
	h.armed.Store(true)

	ol := a.Leases().(car.OrphanLister)
	recs, err := ol.Orphans(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !h.fired.Load() {
		t.Fatal("the interleaving did not happen: Orphans read no record of u1")
	}
	if len(recs) != 0 {
		t.Errorf("orphans %+v, want none (b's claim runs)", recs)
	}
	if _, err := m.ZScore(claims, "u1"); err != nil {
		t.Fatalf("u1's new claim is gone from the claims index: %v", err)
	}
	if m.Exists(claims) && slices.Contains(mustMembers(t, m, claims), "u2") {
		t.Errorf("the stale entry of u2 is still in the claims index")
	}

	// b dies: its claim runs out (Redis's TIME and its TTLs move on).
	m.SetTime(start.Add(2 * time.Minute))
	m.FastForward(2 * time.Minute)
	recs, err = ol.Orphans(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].UserId != "u1" || recs[0].Generation != gen || recs[0].State != car.LeaseReleasing || recs[0].HoldLeft != 0 {
		t.Fatalf("orphans once b's claim ran out: %+v, want u1's generation %d, releasing", recs, gen)
	}
}

func mustMembers(t *testing.T, m interface {
	ZMembers(string) ([]string, error)
}, key string) []string {
	t.Helper()
	ms, err := m.ZMembers(key)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}
