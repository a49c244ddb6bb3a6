package redisstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
)

// recv returns the next message from ch, failing the test after 5 s (a
// bound on a lost message, not a wait for a timer).
func recv(t *testing.T, ch <-chan message, what string) message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no message within 5 s", what)
		return message{}
	}
}

func noMore(t *testing.T, ch <-chan message, what string) {
	t.Helper()
	select {
	case m := <-ch:
		t.Errorf("%s: unexpected message %+v", what, m)
	default:
	}
}

func newReady(t *testing.T, c redis.UniversalClient, id string, opts ...Option) *Store {
	t.Helper()
	s, err := New(c, "proj", append([]Option{WithReplicaID(id), withExactID()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		t.Fatalf("%s not ready: %v", id, err)
	}
	return s
}

func collect(s *Store, kind string) <-chan message {
	ch := make(chan message, 16)
	s.handle(kind, func(m message) { ch <- m })
	return ch
}

// checkDelivery: a message to one replica reaches it alone, with its sender
// and fields; a broadcast reaches every replica, the sender included.
func checkDelivery(t *testing.T, a, b *Store) {
	ctx := context.Background()
	aPing, bPing := collect(a, "ping"), collect(b, "ping")
	aAll, bAll := collect(a, "wake"), collect(b, "wake")

	sent := message{Kind: "ping", User: "u1", Session: "u1#3", Gen: 3, Text: "replaced", Data: []byte{0, 1, 2, 255}}
	if err := a.publish(ctx, b.Replica(), sent); err != nil {
		t.Fatal(err)
	}
	got := recv(t, bPing, "publish a→b")
	want := sent
	want.From = a.Replica()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("b got %+v, want %+v", got, want)
	}
	if err := a.broadcast(ctx, message{Kind: "wake", Text: "released"}); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan message{"a": aAll, "b": bAll} {
		if m := recv(t, ch, "broadcast to "+name); m.From != a.Replica() || m.Text != "released" {
			t.Errorf("%s got %+v", name, m)
		}
	}
	// Order on one channel is kept.
	for i := range 10 {
		if err := b.publish(ctx, a.Replica(), message{Kind: "ping", Gen: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if m := recv(t, aPing, "ordered"); m.Gen != uint64(i) {
			t.Fatalf("message %d has Gen %d: out of order", i, m.Gen)
		}
	}
	noMore(t, aPing, "a after its own messages")
	noMore(t, bPing, "b after a's message")
}

func TestBusDeliveryMiniredis(t *testing.T) {
	c := redistest.MiniClient(t, redistest.Mini(t))
	checkDelivery(t, newReady(t, c, "a"), newReady(t, c, "b"))
}

func TestBusDeliveryRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	checkDelivery(t, newReady(t, c, "a"), newReady(t, c, "b"))
}

func TestBusRefusesWhatItCannotCarry(t *testing.T) {
	c := redistest.MiniClient(t, redistest.Mini(t))
	s := newReady(t, c, "a")
	if err := s.broadcast(context.Background(), message{}); err == nil {
		t.Error("a message without a kind was sent")
	}
	if err := s.broadcast(context.Background(), message{Kind: "x", Data: make([]byte, maxMessage)}); err == nil {
		t.Error("a message over maxMessage was sent")
	}
}

func TestBusDropsGarbageAndKeepsServing(t *testing.T) {
	c := redistest.MiniClient(t, redistest.Mini(t))
	s := newReady(t, c, "a")
	got := collect(s, "ping")
	ctx := context.Background()
	for _, junk := range []string{"", "{", "null", `{"k":""}`, `{"k":7}`, "\xff\xfe"} {
		if err := c.Publish(ctx, s.keys.node("a"), junk).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctx, s.keys.node("a"), `{"k":"nobody"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.publish(ctx, "a", message{Kind: "ping", Gen: 1}); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got, "after garbage"); m.Gen != 1 {
		t.Errorf("got %+v", m)
	}
}

func TestAliveExpiresWithoutRefresh(t *testing.T) {
	m := redistest.Mini(t)
	c := redistest.MiniClient(t, m)
	ctx := context.Background()
	// A replica whose refresher never fires again: as after a crash.
	a := newReady(t, c, "a", withTimings(AliveTTL, time.Hour, nil))
	b := newReady(t, c, "b")
	if pttl := m.TTL(a.keys.alive("a")); pttl != AliveTTL {
		t.Errorf("liveness TTL = %v, want %v", pttl, AliveTTL)
	}
	for _, step := range []struct {
		ff    time.Duration
		alive bool
	}{{0, true}, {AliveTTL - time.Millisecond, true}, {time.Millisecond, false}} {
		m.FastForward(step.ff)
		ok, err := b.alive(ctx, "a")
		if err != nil || ok != step.alive {
			t.Fatalf("after %v more: alive(a) = %v, %v; want %v", step.ff, ok, err, step.alive)
		}
	}
	if ok, err := b.alive(ctx, "never-started"); ok || err != nil {
		t.Errorf("alive of an unknown replica = %v, %v", ok, err)
	}
}

func TestAliveIsRefreshed(t *testing.T) {
	m := redistest.Mini(t)
	c := redistest.MiniClient(t, m)
	refreshed := make(chan error, 100)
	a := newReady(t, c, "a", withTimings(AliveTTL, 20*time.Millisecond, func(err error) { refreshed <- err }))
	<-refreshed // the first, before ready
	for range 3 {
		m.FastForward(AliveTTL - time.Second)
		select {
		case err := <-refreshed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no refresh within 5 s")
		}
		// A refresh after the FastForward puts the TTL back.
		for len(refreshed) > 0 {
			<-refreshed
		}
		if ok, err := a.alive(context.Background(), "a"); !ok || err != nil {
			t.Fatalf("alive(a) = %v, %v after a refresh", ok, err)
		}
	}
}

func TestCloseStopsEverything(t *testing.T) {
	m := redistest.Mini(t)
	c := redistest.MiniClient(t, m)
	a := newReady(t, c, "a")
	b := newReady(t, c, "b")
	got := collect(a, "ping")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if ok, _ := b.alive(context.Background(), "a"); ok {
		t.Error("a closed replica is still alive")
	}
	if a.goroutine(func(context.Context) { t.Error("ran after Close") }) {
		t.Error("goroutine accepted work after Close")
	}
	if err := a.waitReady(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("waitReady after a ready Store's Close = %v, want ErrClosed", err)
	}
	_ = b.publish(context.Background(), "a", message{Kind: "ping"})
	time.Sleep(50 * time.Millisecond) // a message that must not arrive: bounded look
	noMore(t, got, "a closed replica")
	// Its subscription is gone from Redis.
	if n := m.PubSubNumSub(a.keys.node("a"))[a.keys.node("a")]; n != 0 {
		t.Errorf("closed replica still has %d subscription(s)", n)
	}
}

func TestCloseBeforeRedisAnswers(t *testing.T) {
	// Redis unreachable: New succeeds, waitReady waits, Close returns.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	defer c.Close()
	s, err := New(c, "p")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.waitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waitReady with Redis down = %v", err)
	}
	if ok, err := s.alive(context.Background(), "x"); ok || err == nil {
		t.Errorf("alive with Redis down = %v, %v; want an error", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("waitReady after Close = %v, want ErrClosed", err)
	}
}

// A Redis restarted empty: the liveness key comes back with the next
// refresh, and the bus resubscribes by itself.
func TestBusSurvivesRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	a := newReady(t, c, "a", withTimings(AliveTTL, 50*time.Millisecond, nil))
	b := newReady(t, c, "b", withTimings(AliveTTL, 50*time.Millisecond, nil))
	got := collect(b, "ping")
	srv.Restart()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, _ := a.alive(ctx, "b")
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b's liveness key not back 10 s after the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Resend until b's resubscription is in place.
	for i := 1; ; i++ {
		_ = a.publish(ctx, "b", message{Kind: "ping", Gen: uint64(i)})
		select {
		case m := <-got:
			if m.From != "a" {
				t.Fatalf("got %+v", m)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("b receives nothing 10 s after the restart")
		}
	}
}

// Inside a synctest bubble (fake clock, miniredis on net.Pipe): a live
// replica stays alive for a minute on its 3 s refresh; one that stops
// refreshing (its process gone) is seen dead AliveTTL after its last
// refresh, not before.
func TestAliveTimelineSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, c := redistest.Pipe(t)
		crashed := redistest.PipeClient(t, m)
		ctx := context.Background()
		a := newReady(t, c, "a")
		b := newReady(t, crashed, "b") // refreshed now, at +3 s, +6 s, +9 s
		time.Sleep(time.Minute)
		if ok, err := a.alive(ctx, "b"); !ok || err != nil {
			t.Fatalf("a live replica is dead after a minute: %v %v", ok, err)
		}
		time.Sleep(time.Second) // 1 s after b's last refresh
		_ = crashed.Close()     // b's process is gone: no refresh, no DEL
		time.Sleep(AliveTTL - time.Second - time.Millisecond)
		if ok, err := a.alive(ctx, "b"); !ok || err != nil {
			t.Fatalf("b dead before AliveTTL after its last refresh: %v %v", ok, err)
		}
		time.Sleep(2 * time.Millisecond)
		if ok, err := a.alive(ctx, "b"); ok || err != nil {
			t.Fatalf("b alive AliveTTL after its last refresh: %v %v", ok, err)
		}
		_ = b.Close()
	})
}
