package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Direct tests of the session scripts on miniredis, with its clock set by
// the test (SetTime), and on a real redis-server.

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

var testTiming = heartbeat.Timing{Window: time.Minute, Idle: 5 * time.Minute}

type clock struct {
	m   *miniredis.Miniredis
	now time.Time
}

func (c *clock) set(d time.Duration) {
	c.now = t0.Add(d)
	c.m.SetTime(c.now)
}

func miniStores(t *testing.T, n int) (*clock, []heartbeat.Store) {
	t.Helper()
	m := redistest.Mini(t)
	c := &clock{m: m}
	c.set(0)
	var out []heartbeat.Store
	for i := range n {
		out = append(out, newReady(t, redistest.MiniClient(t, m), fmt.Sprintf("r%d", i)).Sessions())
	}
	return c, out
}

// sweepAll sweeps on every store concurrently, repeatedly, and returns
// every deadline taken.
func sweepAll(t *testing.T, stores []heartbeat.Store) []heartbeat.Due {
	t.Helper()
	var mu sync.Mutex
	var all []heartbeat.Due
	var wg sync.WaitGroup
	for _, st := range stores {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					d, err := st.Sweep(context.Background(), 100)
					if err != nil {
						t.Errorf("Sweep: %v", err)
						return
					}
					mu.Lock()
					all = append(all, d...)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return all
}

func kinds(d []heartbeat.Due) map[heartbeat.DueKind]int {
	m := map[heartbeat.DueKind]int{}
	for _, x := range d {
		m[x.Kind]++
	}
	return m
}

func TestSessionsClaimConsumesEverywhere(t *testing.T) {
	_, st := miniStores(t, 2)
	ctx := context.Background()
	a, b := st[0], st[1]
	if err := a.Open(ctx, "u1", "j1", testTiming); err != nil {
		t.Fatal(err)
	}
	cl, err := b.Claim(ctx, "u1", "j1", "r1")
	if err != nil || cl.Resumed || cl.Epoch != 1 || cl.PrevOwner != "" || cl.Timing != testTiming {
		t.Fatalf("first claim: %+v, %v", cl, err)
	}
	for _, s := range st {
		if _, err := s.Claim(ctx, "u1", "j1", "x"); !errors.Is(err, heartbeat.ErrTokenUsed) {
			t.Fatalf("second use on %s: %v, want ErrTokenUsed", s.Replica(), err)
		}
	}
	cl, err = a.Claim(ctx, "u1", "r1", "r2")
	if err != nil || !cl.Resumed || cl.Epoch != 2 || cl.PrevOwner != "r1" || cl.PrevEpoch != 1 {
		t.Fatalf("resume: %+v, %v", cl, err)
	}
	if _, err := b.Claim(ctx, "nobody", "j1", "x"); !errors.Is(err, heartbeat.ErrUnknownSession) {
		t.Fatalf("claim of an unknown session: %v", err)
	}
	// A stale detach (epoch 1) changes nothing.
	if err := b.Detach(ctx, "u1", heartbeat.Detach{Epoch: 1, Grace: time.Second}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Refresh(ctx, []heartbeat.Held{{Session: "u1", Epoch: 2, Resume: "r2", Timing: testTiming}})
	if err != nil || res.Status[0] != heartbeat.HeldOK || res.Rebuilt {
		t.Fatalf("refresh after a stale detach: %+v %v", res, err)
	}
	res, err = b.Refresh(ctx, []heartbeat.Held{{Session: "u1", Epoch: 1, Timing: testTiming}})
	if err != nil || res.Status[0] != heartbeat.HeldReplaced {
		t.Fatalf("refresh of the replaced connection: %+v %v", res, err)
	}
	if err := a.End(ctx, "u1", "done"); err != nil {
		t.Fatal(err)
	}
	res, err = a.Refresh(ctx, []heartbeat.Held{{Session: "u1", Epoch: 2, Timing: testTiming}})
	if err != nil || res.Status[0] != heartbeat.HeldGone {
		t.Fatalf("refresh of an ended session: %+v %v", res, err)
	}
	if err := a.End(ctx, "u1", "again"); !errors.Is(err, heartbeat.ErrUnknownSession) {
		t.Fatalf("second End: %v", err)
	}
}

func TestSessionsNoticesKeptWhileAway(t *testing.T) {
	_, st := miniStores(t, 2)
	ctx := context.Background()
	a, b := st[0], st[1]
	a.Open(ctx, "u1", "j", testTiming)
	for i := range 16 {
		if err := b.Notify(ctx, "u1", fmt.Sprint("k", i), fmt.Appendf(nil, "f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Notify(ctx, "u1", "k3", []byte("f3b")); err != nil {
		t.Fatalf("replacing a kept notice: %v", err)
	}
	if err := b.Notify(ctx, "u1", "k16", []byte("x")); !errors.Is(err, heartbeat.ErrTooManyNotices) {
		t.Fatalf("17th notice: %v", err)
	}
	cl, err := a.Claim(ctx, "u1", "j", "r")
	if err != nil || len(cl.Notices) != 16 || string(cl.Notices[0]) != "f0" || string(cl.Notices[3]) != "f3b" {
		t.Fatalf("claim: %d notices, %v", len(cl.Notices), err)
	}
	cl, _ = b.Claim(ctx, "u1", "r", "r2")
	if len(cl.Notices) != 0 {
		t.Fatalf("notices delivered twice: %d", len(cl.Notices))
	}
	if err := a.Notify(ctx, "nobody", "k", []byte("x")); !errors.Is(err, heartbeat.ErrUnknownSession) {
		t.Fatalf("notify unknown: %v", err)
	}
}

// A notice for a session whose owner is gone (nobody subscribed to its
// channel) is kept, not lost.
func TestSessionsNoticeForADeadOwnerIsKept(t *testing.T) {
	m := redistest.Mini(t)
	ctx := context.Background()
	a := newReady(t, redistest.MiniClient(t, m), "a")
	b := newReady(t, redistest.MiniClient(t, m), "b")
	a.Sessions().Open(ctx, "u1", "j", testTiming)
	if _, err := b.Sessions().Claim(ctx, "u1", "j", "r"); err != nil {
		t.Fatal(err)
	}
	if n := m.PubSubNumSub(b.keys.node("b"))[b.keys.node("b")]; n != 1 {
		t.Fatalf("b's channel has %d subscribers, want 1", n)
	}
	b.Close() // b dies
	// Its subscription ends on miniredis's side a moment later: until then
	// a PUBLISH still reaches it (load made it the case in a run).
	for deadline := time.Now().Add(10 * time.Second); m.PubSubNumSub(b.keys.node("b"))[b.keys.node("b")] > 0; {
		if time.Now().After(deadline) {
			t.Fatal("b's subscription still there 10 s after its Close")
		}
		time.Sleep(time.Millisecond)
	}
	if err := a.Sessions().Notify(ctx, "u1", "ready", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	cl, err := a.Sessions().Claim(ctx, "u1", "r", "r2")
	if err != nil || len(cl.Notices) != 1 || string(cl.Notices[0]) != "hello" {
		t.Fatalf("claim after the owner died: %+v %v", cl, err)
	}
}

// A grace deadline set by a replica that then dies fires on another
// replica, exactly once, however many replicas sweep at the same time; so
// do the lost report and each idle threshold.
func TestSessionsDeadlinesFireOnce(t *testing.T) {
	c, st := miniStores(t, 4)
	ctx := context.Background()
	owner, sweepers := st[0], st[1:]
	const n = 50
	for i := range n {
		id := fmt.Sprint("u", i)
		owner.Open(ctx, id, "j", heartbeat.Timing{Window: time.Minute, Idle: 40 * time.Second})
		if _, err := owner.Claim(ctx, id, "j", "r"); err != nil {
			t.Fatal(err)
		}
	}
	sweepAll(t, sweepers) // nothing due yet, and the sweep clock starts
	c.set(5 * time.Second)
	sweepAll(t, sweepers)
	// The owner dies at 5 s; its last refresh was at 0. Nobody may count
	// it lost before its lease ends.
	c.set(heartbeat.StoreOwnerTTL - time.Millisecond)
	if got := sweepAll(t, sweepers); len(got) != 0 {
		t.Fatalf("deadlines before the owner lease ended: %+v", got)
	}
	c.set(heartbeat.StoreOwnerTTL + time.Second)
	got := kinds(sweepAll(t, sweepers))
	if got[heartbeat.DueLost] != n || len(got) != 1 {
		t.Fatalf("after the owner lease: %v, want %d lost", got, n)
	}
	c.set(45 * time.Second)
	if got := kinds(sweepAll(t, sweepers)); got[heartbeat.DueIdle] != n || len(got) != 1 {
		t.Fatalf("at 45 s: %v, want %d idle", got, n)
	}
	c.set(time.Minute + time.Second) // grace from the last frame (0) + 1 min
	all := sweepAll(t, sweepers)
	if got := kinds(all); got[heartbeat.DueExpired] != n || len(got) != 1 {
		t.Fatalf("after the grace: %v, want %d expired", got, n)
	}
	for _, d := range all {
		if !d.At.Equal(c.now) {
			t.Fatalf("expired at %v, want the store's time %v", d.At, c.now)
		}
	}
	c.set(time.Hour)
	if got := sweepAll(t, sweepers); len(got) != 0 {
		t.Fatalf("deadlines after the sessions ended: %+v", got)
	}
	if keys := c.m.Keys(); len(keys) > 8 {
		t.Fatalf("keys left: %v", keys)
	}
}

// After a gap in the sweeps longer than the owner lease (Redis was
// unreachable for everyone), owners get one more lease to refresh before
// they count as lost.
func TestSessionsOutageHoldsOwners(t *testing.T) {
	c, st := miniStores(t, 2)
	ctx := context.Background()
	a, b := st[0], st[1]
	a.Open(ctx, "u1", "j", testTiming)
	a.Claim(ctx, "u1", "j", "r")
	b.Sweep(ctx, 10)
	c.set(2 * time.Minute) // nobody swept for 2 minutes
	if d, err := b.Sweep(ctx, 10); err != nil || len(d) != 0 {
		t.Fatalf("first sweep after the outage: %+v %v", d, err)
	}
	res, err := a.Refresh(ctx, []heartbeat.Held{{Session: "u1", Epoch: 1, Resume: "r", Timing: testTiming}})
	if err != nil || res.Status[0] != heartbeat.HeldOK {
		t.Fatalf("refresh after the outage: %+v %v", res, err)
	}
	// A replica that does not refresh within the extra lease is lost
	// (the others sweep every second meanwhile).
	for s := time.Second; s < heartbeat.StoreOwnerTTL; s += time.Second {
		c.set(2*time.Minute + s)
		if d, _ := b.Sweep(ctx, 10); len(d) != 0 {
			t.Fatalf("sweep within the refreshed lease: %+v", d)
		}
	}
	c.set(2*time.Minute + heartbeat.StoreOwnerTTL + time.Second)
	if d, _ := b.Sweep(ctx, 10); len(d) != 1 || d[0].Kind != heartbeat.DueLost {
		t.Fatalf("sweep after the lease: %+v", d)
	}
	res, _ = a.Refresh(ctx, []heartbeat.Held{{Session: "u1", Epoch: 1, Resume: "r", Timing: testTiming}})
	if res.Status[0] != heartbeat.HeldRevived {
		t.Fatalf("refresh of a session counted lost: %+v", res)
	}
}

func TestSessionsIdleCountMoves(t *testing.T) {
	c, st := miniStores(t, 2)
	ctx := context.Background()
	a, b := st[0], st[1]
	a.Open(ctx, "u1", "j", testTiming)
	a.Claim(ctx, "u1", "j", "r")
	c.set(7 * time.Minute)
	// a reports 2 min since the last activity and no threshold passed.
	if err := a.Detach(ctx, "u1", heartbeat.Detach{Epoch: 1, Grace: time.Hour, ActivityAge: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	cl, err := b.Claim(ctx, "u1", "r", "r2")
	if err != nil || cl.ActivityAge != 2*time.Minute || cl.IdleTimes != 0 {
		t.Fatalf("claim: %+v %v", cl, err)
	}
	b.Detach(ctx, "u1", heartbeat.Detach{Epoch: 2, Grace: time.Hour, ActivityAge: 2 * time.Minute})
	c.set(10*time.Minute + time.Second) // activity at 5 min: threshold at 10 min
	d, err := a.Sweep(ctx, 10)
	if err != nil || len(d) != 1 || d[0].Kind != heartbeat.DueIdle || d[0].Times != 1 || !d[0].At.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("sweep: %+v %v", d, err)
	}
	if err := a.Touch(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	c.set(14 * time.Minute)
	if d, _ := a.Sweep(ctx, 10); len(d) != 0 {
		t.Fatalf("touch did not restart the idle count: %+v", d)
	}
}

// A Detach that comes after another connection claimed the session (the
// old replica told Redis late) changes nothing but the activity: a later
// one counts, the replica holding the new connection is told with its
// age, and a disconnected session's next idle threshold moves with it.
func TestSessionsStaleDetachHandsOverActivity(t *testing.T) {
	c, st := miniStores(t, 2)
	ctx := context.Background()
	a, b := st[0], st[1]
	msgs := make(chan heartbeat.StoreMessage, 8)
	stop := b.Listen(func(m heartbeat.StoreMessage) { msgs <- m })
	defer stop()
	a.Open(ctx, "u1", "j", testTiming)
	ca, err := a.Claim(ctx, "u1", "j", "r")
	if err != nil {
		t.Fatal(err)
	}
	c.set(time.Minute)
	cb, err := b.Claim(ctx, "u1", "r", "r2")
	if err != nil || cb.ActivityAge != time.Minute {
		t.Fatalf("claim: %+v %v", cb, err)
	}
	// a saw activity 2 s ago; then an older one, which changes nothing.
	for _, age := range []time.Duration{2 * time.Second, 30 * time.Second} {
		if err := a.Detach(ctx, "u1", heartbeat.Detach{Epoch: ca.Epoch, Grace: time.Second, ActivityAge: age, IdleTimes: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if m := recvMsg(t, msgs); m.Kind != heartbeat.MessageTouch || m.Session != "u1" || m.ActivityAge != 2*time.Second {
		t.Fatalf("message to the new owner %+v, want MessageTouch with ActivityAge 2s", m)
	}
	// The next message is that of a Touch (age 0): the older activity
	// sent none.
	if err := a.Touch(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, msgs); m.Kind != heartbeat.MessageTouch || m.ActivityAge != 0 {
		t.Fatalf("message after a Touch %+v, want MessageTouch with ActivityAge 0 (the older activity must send none)", m)
	}
	// Still b's: b detaches (activity 10 s ago by its count, times 0) and
	// a's late Detach with the activity of 1 s ago moves the threshold.
	c.set(2 * time.Minute)
	if err := b.Detach(ctx, "u1", heartbeat.Detach{Epoch: cb.Epoch, Grace: time.Hour, ActivityAge: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := a.Detach(ctx, "u1", heartbeat.Detach{Epoch: ca.Epoch, Grace: time.Second, ActivityAge: time.Second}); err != nil {
		t.Fatal(err)
	}
	c.set(2*time.Minute + 5*time.Minute - 2*time.Second) // 10 s ago + 5 min has passed, 1 s ago + 5 min not
	if d, err := a.Sweep(ctx, 10); err != nil || len(d) != 0 {
		t.Fatalf("sweep before the moved threshold: %+v %v", d, err)
	}
	c.set(2*time.Minute + 5*time.Minute)
	d, err := a.Sweep(ctx, 10)
	if err != nil || len(d) != 1 || d[0].Kind != heartbeat.DueIdle || !d[0].At.Equal(t0.Add(2*time.Minute+5*time.Minute-time.Second)) {
		t.Fatalf("sweep: %+v %v, want idle(1) 5 min after the handed-over activity", d, err)
	}
	if cl, err := a.Claim(ctx, "u1", "r2", "r3"); err != nil || !cl.Resumed {
		t.Fatalf("claim after the stale Detaches: %+v %v (they must not change the resume nonce)", cl, err)
	}
}

// Redis restarted empty: the next refresh detects it and rebuilds the held
// sessions; their resume nonces keep working.
func TestSessionsRebuiltAfterDataLoss(t *testing.T) {
	c, st := miniStores(t, 2)
	ctx := context.Background()
	a, b := st[0], st[1]
	a.Open(ctx, "u1", "j", testTiming)
	a.Claim(ctx, "u1", "j", "r")
	held := []heartbeat.Held{{Session: "u1", Epoch: 1, Resume: "r", Timing: testTiming}}
	if res, _ := a.Refresh(ctx, held); res.Rebuilt {
		t.Fatal("rebuilt without a loss")
	}
	c.m.FlushAll()
	res, err := a.Refresh(ctx, held)
	if err != nil || !res.Rebuilt || res.Status[0] != heartbeat.HeldOK {
		t.Fatalf("refresh after the loss: %+v %v", res, err)
	}
	cl, err := b.Claim(ctx, "u1", "r", "r2")
	if err != nil || cl.PrevOwner != "r0" || cl.Epoch != 2 {
		t.Fatalf("resume after the rebuild: %+v %v", cl, err)
	}
}

// Redis unreachable: every call fails with a *heartbeat.StoreError.
func TestSessionsErrorsAreTyped(t *testing.T) {
	m := redistest.Mini(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	st := newReady(t, c, "a").Sessions()
	m.Close()
	ctx := context.Background()
	var se *heartbeat.StoreError
	checks := map[string]error{
		"open":   st.Open(ctx, "u", "j", testTiming),
		"detach": st.Detach(ctx, "u", heartbeat.Detach{Epoch: 1}),
		"touch":  st.Touch(ctx, "u"),
		"notify": st.Notify(ctx, "u", "k", []byte("f")),
		"end":    st.End(ctx, "u", "r"),
	}
	_, checks["claim"] = st.Claim(ctx, "u", "j", "r")
	_, checks["refresh"] = st.Refresh(ctx, []heartbeat.Held{{Session: "u", Epoch: 1}})
	_, checks["sweep"] = st.Sweep(ctx, 10)
	for op, err := range checks {
		if !errors.As(err, &se) || se.Op != op {
			t.Errorf("%s with Redis down: %v, want a *heartbeat.StoreError for %q", op, err, op)
		}
	}
}

// On a real redis-server: a token is consumed on every replica, the
// previous owner is told over the bus, a notice is routed to the owner;
// killed, every call is a typed error; restarted empty, the next refresh
// rebuilds.
func TestSessionsRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := newReady(t, srv.Client(t), "a")
	b := newReady(t, srv.Client(t), "b")
	msgs := make(chan heartbeat.StoreMessage, 8)
	stop := a.Sessions().Listen(func(m heartbeat.StoreMessage) { msgs <- m })
	defer stop()
	sa, sb := a.Sessions(), b.Sessions()
	if err := sb.Open(ctx, "u1", "j", testTiming); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.Claim(ctx, "u1", "j", "r1"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []heartbeat.Store{sa, sb} {
		if _, err := s.Claim(ctx, "u1", "j", "x"); !errors.Is(err, heartbeat.ErrTokenUsed) {
			t.Fatalf("second use: %v", err)
		}
	}
	if err := sb.Notify(ctx, "u1", "queue", []byte(`{"type":"queue"}`)); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, msgs); m.Kind != heartbeat.MessageNotice || string(m.Frame) != `{"type":"queue"}` || m.Epoch != 1 {
		t.Fatalf("routed notice: %+v", m)
	}
	if _, err := sb.Claim(ctx, "u1", "r1", "r2"); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, msgs); m.Kind != heartbeat.MessageReplaced || m.Session != "u1" || m.Epoch != 1 {
		t.Fatalf("replaced message: %+v", m)
	}
	held := []heartbeat.Held{{Session: "u1", Epoch: 2, Resume: "r2", Timing: testTiming}}
	if _, err := sb.Refresh(ctx, held); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	var se *heartbeat.StoreError
	if _, err := sb.Refresh(ctx, held); !errors.As(err, &se) {
		t.Fatalf("refresh with redis-server killed: %v", err)
	}
	if err := sa.Open(ctx, "u2", "j", testTiming); !errors.As(err, &se) || !errors.Is(err, se.Err) {
		t.Fatalf("open with redis-server killed: %v", err)
	}
	srv.Restart() // empty
	var res heartbeat.RefreshResult
	var err error
	for range 50 { // the client reconnects on its next command
		if res, err = sb.Refresh(ctx, held); err == nil {
			break
		}
	}
	if err != nil || !res.Rebuilt || res.Status[0] != heartbeat.HeldOK {
		t.Fatalf("refresh after the restart: %+v %v", res, err)
	}
	if _, err := sa.Claim(ctx, "u1", "r2", "r3"); err != nil {
		t.Fatalf("resume after the rebuild: %v", err)
	}
}

func recvMsg(t *testing.T, ch <-chan heartbeat.StoreMessage) heartbeat.StoreMessage {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5 s")
	}
	return heartbeat.StoreMessage{}
}
