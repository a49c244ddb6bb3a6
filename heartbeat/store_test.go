package heartbeat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/hbtest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// Several Servers (replicas) sharing one heartbeat.MemoryStore, each on its
// own in-memory listener, in a synctest bubble. The same behaviour on Redis
// is tested in car/redisstore.

// testKey is the token key every replica shares.
var testKey = bytes.Repeat([]byte{7}, heartbeat.MinTokenKeyLen)

// flakyStore is a Store that can be made unreachable. It records the
// sessions of every Refresh, in the order given.
type flakyStore struct {
	heartbeat.Store
	down atomic.Bool
	stop func()

	mu        sync.Mutex
	refreshed [][]string
	// afterClaim, when set, runs after a Claim the store granted and
	// before it returns to the Server: what other replicas do meanwhile.
	afterClaim func(id string)
	// detachSkew and refreshSkew are added to the activity ages of this
	// replica's Detach and Refresh calls: a Redis store measures ages in
	// milliseconds, against its own clock, after the call's latency, so
	// the same activity reported twice can come out a few milliseconds
	// apart.
	detachSkew, refreshSkew time.Duration
	// refreshDelay is how long each Refresh takes before the store sees
	// it: a slow round trip.
	refreshDelay time.Duration
	// reportAnswerDelay is how long the answer of each ReportIdle takes
	// to come back after the store recorded it.
	reportAnswerDelay time.Duration
}

func (f *flakyStore) Listen(deliver func(heartbeat.StoreMessage)) func() {
	f.stop = f.Store.Listen(deliver)
	return func() { f.stop() }
}

// kill makes the replica look dead to the store: every call fails and it
// no longer listens.
func (f *flakyStore) kill() {
	f.down.Store(true)
	f.stop()
}

var errDown = errors.New("connection refused (test)")

func (f *flakyStore) fail(op string) error {
	if f.down.Load() {
		return &heartbeat.StoreError{Op: op, Err: errDown}
	}
	return nil
}

func (f *flakyStore) Open(ctx context.Context, id, join string, t heartbeat.Timing) error {
	if err := f.fail("open"); err != nil {
		return err
	}
	return f.Store.Open(ctx, id, join, t)
}

func (f *flakyStore) Claim(ctx context.Context, id, used, resume string) (heartbeat.Claim, error) {
	if err := f.fail("claim"); err != nil {
		return heartbeat.Claim{}, err
	}
	cl, err := f.Store.Claim(ctx, id, used, resume)
	f.mu.Lock()
	hook := f.afterClaim
	f.mu.Unlock()
	if err == nil && hook != nil {
		hook(id)
	}
	return cl, err
}

func (f *flakyStore) setAfterClaim(hook func(id string)) {
	f.mu.Lock()
	f.afterClaim = hook
	f.mu.Unlock()
}

func (f *flakyStore) Detach(ctx context.Context, id string, d heartbeat.Detach) error {
	if err := f.fail("detach"); err != nil {
		return err
	}
	d.ActivityAge += f.detachSkew
	return f.Store.Detach(ctx, id, d)
}

func (f *flakyStore) Refresh(ctx context.Context, held []heartbeat.Held) (heartbeat.RefreshResult, error) {
	if err := f.fail("refresh"); err != nil {
		return heartbeat.RefreshResult{}, err
	}
	ids := make([]string, len(held))
	for i, h := range held {
		ids[i] = h.Session
	}
	f.mu.Lock()
	f.refreshed = append(f.refreshed, ids)
	f.mu.Unlock()
	time.Sleep(f.refreshDelay)
	if f.refreshSkew != 0 {
		held = slices.Clone(held)
		for i := range held {
			held[i].ActivityAge += f.refreshSkew
		}
	}
	return f.Store.Refresh(ctx, held)
}

func (f *flakyStore) ReportIdle(ctx context.Context, id string, epoch uint64, activityAge time.Duration, times int) (bool, error) {
	if err := f.fail("report idle"); err != nil {
		return false, err
	}
	ok, err := f.Store.ReportIdle(ctx, id, epoch, activityAge, times)
	time.Sleep(f.reportAnswerDelay)
	return ok, err
}

func (f *flakyStore) Touch(ctx context.Context, id string) error {
	if err := f.fail("touch"); err != nil {
		return err
	}
	return f.Store.Touch(ctx, id)
}

func (f *flakyStore) Notify(ctx context.Context, id, key string, frame []byte) error {
	if err := f.fail("notify"); err != nil {
		return err
	}
	return f.Store.Notify(ctx, id, key, frame)
}

func (f *flakyStore) End(ctx context.Context, id, reason string) error {
	if err := f.fail("end"); err != nil {
		return err
	}
	return f.Store.End(ctx, id, reason)
}

func (f *flakyStore) Sweep(ctx context.Context, limit int) ([]heartbeat.Due, error) {
	if err := f.fail("sweep"); err != nil {
		return nil, err
	}
	return f.Store.Sweep(ctx, limit)
}

// cluster is n replicas on one MemoryStore.
type cluster struct {
	t     *testing.T
	store *heartbeat.MemoryStore
	envs  []*env
	flaky []*flakyStore
	logs  *logBuffer
	start time.Time                // the cluster's time zero
	opts  []heartbeat.ServerOption // every replica's
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newCluster(t *testing.T, n int, opts ...heartbeat.ServerOption) *cluster {
	t.Helper()
	cl := &cluster{t: t, store: heartbeat.NewMemoryStore(), logs: &logBuffer{}, start: time.Now(), opts: opts}
	for range n {
		cl.add()
	}
	return cl
}

// add starts one more replica on the cluster's store, now: a replica
// started later than the others has a younger clock.
func (cl *cluster) add() *env {
	t := cl.t
	t.Helper()
	logger := slog.New(slog.NewTextHandler(cl.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	name := fmt.Sprintf("r%d", len(cl.envs))
	fs := &flakyStore{Store: cl.store.Replica(name)}
	rec := &recorder{}
	all := append(rec.options(), heartbeat.WithStore(fs), heartbeat.WithTokenKeys(testKey), heartbeat.WithLogger(logger.With("replica", name)))
	srv, err := heartbeat.NewServer(append(all, cl.opts...)...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	rec.srv = srv
	l := memnet.Listen("hb-" + name)
	e := &env{Served: &hbtest.Served{T: t, Start: cl.start, L: l, Srv: srv}, t: t, start: cl.start, l: l, srv: srv, rec: rec}
	hs := &http.Server{Handler: srv}
	go hs.Serve(e.l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	cl.envs = append(cl.envs, e)
	cl.flaky = append(cl.flaky, fs)
	return e
}

// count counts the callbacks of kind for id on every replica.
func (cl *cluster) count(id, kind string) int {
	n := 0
	for _, e := range cl.envs {
		for _, r := range e.rec.of(id) {
			if r.kind == kind {
				n++
			}
		}
	}
	return n
}

func (cl *cluster) histories(id string) string {
	var parts []string
	for i, e := range cl.envs {
		parts = append(parts, fmt.Sprintf("r%d[%s]", i, e.rec.history(id)))
	}
	return strings.Join(parts, " ")
}

func wantClose(t *testing.T, c *rawClient, code int) string {
	t.Helper()
	got, reason := c.closed()
	if got != code {
		t.Fatalf("close code = %d (%q), want %d", got, reason, code)
	}
	return reason
}

// Every refresh round carries the held connections in the same order, so
// that each is refreshed one round after the last however long rounds take
// (in a random order, one first in a round and last in the next waits two
// rounds, and slow rounds then outlast the owner lease of a connected
// client).
func TestStoreRefreshesInTheSameOrderEveryRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 1)
		e := cl.envs[0]
		for i := range 40 {
			id := fmt.Sprintf("u%02d", (i*7)%40) // joined out of id order
			e.join(id, e.Open(id))
		}
		time.Sleep(4*heartbeat.StoreRefreshInterval + time.Second)
		fs := cl.flaky[0]
		fs.mu.Lock()
		defer fs.mu.Unlock()
		var rounds [][]string
		for _, ids := range fs.refreshed {
			if len(ids) == 40 {
				rounds = append(rounds, ids)
			}
		}
		if len(rounds) < 3 {
			t.Fatalf("%d refresh rounds with every connection, want at least 3 (all: %v)", len(rounds), fs.refreshed)
		}
		for i, r := range rounds[1:] {
			if !slices.Equal(r, rounds[0]) {
				t.Fatalf("round %d refreshed in another order than round 0:\n%v\n%v", i+1, r, rounds[0])
			}
		}
	})
}

// A join token works on any replica, once: a second hello with it is
// refused on every replica. The welcome's resume token works on another
// replica, whose hello closes the first connection with 4004.
func TestStoreAnyReplicaServesAnyUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3)
		a, b, c := cl.envs[0], cl.envs[1], cl.envs[2]
		token := a.Open("u1")

		cb, w := b.join("u1", token)
		for _, e := range []*env{a, b, c} {
			x := e.hello("u1", token)
			wantClose(t, x, heartbeat.CloseUnauthorized)
		}
		if !cb.isOpen() {
			t.Fatal("a refused hello closed the connected client")
		}

		ca, w2 := c.join("u1", w.Token)
		if !w2.Resumed {
			t.Fatal("welcome on the second replica: resumed = false")
		}
		if reason := wantClose(t, cb, heartbeat.CloseReplaced); !strings.Contains(reason, "replaced") {
			t.Fatalf("close reason %q", reason)
		}
		synctest.Wait()
		if got, want := cl.histories("u1"), "r0[] r1[connect disconnect(replaced by a newer connection)] r2[resume]"; got != want {
			t.Fatalf("callbacks:\n got %s\nwant %s", got, want)
		}
		// The first resume token is used up everywhere too.
		x := a.hello("u1", w.Token)
		wantClose(t, x, heartbeat.CloseUnauthorized)
		if !ca.isOpen() {
			t.Fatal("the current connection was closed")
		}
		if _, ok := c.srv.Session("u1"); !ok {
			t.Fatal("the owner replica does not hold the session")
		}
		if _, ok := b.srv.Session("u1"); ok {
			t.Fatal("the replaced replica still holds the session")
		}
	})
}

// Send on any replica reaches the connection on another; a notice sent
// while the client is away is kept and arrives after its next welcome, on
// whichever replica it resumes.
func TestStoreNoticesFollowTheClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2)
		a, b := cl.envs[0], cl.envs[1]
		token := a.Open("u1")
		cb, w := b.join("u1", token)

		if err := a.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 3}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if f := cb.next(); f.Type != "queue" || f.Position != 3 {
			t.Fatalf("frame %+v, want queue 3", f)
		}

		cb.drop()
		synctest.Wait()
		if err := b.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeCustom, Name: "n", Data: []byte(`1`)}); err != nil {
			t.Fatalf("Send while away: %v", err)
		}
		if err := a.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeCustom, Name: "n", Data: []byte(`2`)}); err != nil {
			t.Fatalf("Send while away: %v", err)
		}
		ca, _ := a.join("u1", w.Token)
		if f := ca.next(); f.Type != "custom" || string(f.Data) != "2" {
			t.Fatalf("first frame after the welcome %+v, want the latest custom notice", f)
		}
		if err := b.srv.Send(context.Background(), "nobody", heartbeat.Notice{Kind: heartbeat.NoticeQueue}); !errors.Is(err, heartbeat.ErrUnknownSession) {
			t.Fatalf("Send to an unknown session: %v", err)
		}
	})
}

// A notice sent on another replica while a hello's Claim is under way (the
// store already routes it to the new owner, which has not welcomed the
// client yet) reaches the client after the welcome, as does a release.
func TestStoreMessagesDuringAClaimAreKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2)
		a, b := cl.envs[0], cl.envs[1]
		token := a.Open("u1")
		cl.flaky[1].setAfterClaim(func(id string) {
			if err := a.srv.Send(context.Background(), id, heartbeat.Notice{Kind: heartbeat.NoticeReady}); err != nil {
				t.Errorf("Send during the claim: %v", err)
			}
		})
		cb, w := b.join("u1", token)
		if f := cb.next(); f.Type != "ready" {
			t.Fatalf("first frame after the welcome %+v, want the ready notice sent during the claim", f)
		}

		// A release that reaches the new owner during its claim ends the
		// new connection with the released notice.
		cl.flaky[0].setAfterClaim(func(id string) {
			if err := b.srv.Release(context.Background(), id, "stopped"); err != nil {
				t.Errorf("Release during the claim: %v", err)
			}
		})
		ca, _ := a.join("u1", w.Token)
		if f := ca.next(); f.Type != "released" || f.Reason != "stopped" {
			t.Fatalf("frame after the welcome %+v, want the released notice", f)
		}
		if reason := wantClose(t, ca, heartbeat.CloseReleased); reason != "stopped" {
			t.Fatalf("close reason %q, want stopped", reason)
		}
		wantClose(t, cb, heartbeat.CloseReplaced)
	})
}

// The idle count follows the user: activity reported on one replica counts
// on another, and each threshold fires once in all.
func TestStoreIdleFollowsTheUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
		a, b := cl.envs[0], cl.envs[1]
		token := a.Open("u1") // activity at 0
		ca, w := a.join("u1", token)
		a.SleepUntil(50 * time.Second)
		ca.send(`{"type":"activity"}`)
		a.SleepUntil(60 * time.Second)
		ca.drop() // away for 20 s: idle time keeps counting (in the store)
		a.SleepUntil(80 * time.Second)
		cb, _ := b.join("u1", w.Token)
		a.SleepUntil(151 * time.Second)
		if got := cl.count("u1", "idle"); got != 1 {
			t.Fatalf("idle callbacks after 151 s = %d, want 1; %s", got, cl.histories("u1"))
		}
		if at := b.at("u1", "idle", 1); at != 150*time.Second {
			t.Fatalf("idle(1) at %v, want 150s (100 s after the activity on the other replica)", at)
		}
		if f := cb.next(); f.Type != "idle" || f.Times != 1 {
			t.Fatalf("frame %+v, want idle 1", f)
		}
		cb.drop() // the store counts the next threshold
		a.SleepUntil(255 * time.Second)
		if got := cl.count("u1", "idle"); got != 2 {
			t.Fatalf("idle callbacks after 255 s = %d, want 2; %s", got, cl.histories("u1"))
		}
		for _, e := range cl.envs {
			for _, r := range e.rec.of("u1") {
				if r.kind == "idle" && r.ev.Times == 2 {
					if at := r.ev.At.Sub(a.start); at != 250*time.Second {
						t.Fatalf("idle(2) at %v, want 250s", at)
					}
				}
			}
		}
	})
}

// The idle count follows the user to a replica that started after the
// user's last activity (a replica restarted or added during a deploy):
// the activity is older than that replica's clock, and still counts.
func TestStoreIdleFollowsTheUserToAYoungerReplica(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace bool // the old connection still open, so its replica hands its activity over
	}{{"after a drop", false}, {"replacing an open connection", true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := newCluster(t, 1, heartbeat.WithIdleThreshold(300*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
				a := cl.envs[0]
				ca, w := a.join("u1", a.Open("u1")) // activity at 0
				a.SleepUntil(200 * time.Second)
				b := cl.add() // its clock starts at 200 s
				a.SleepUntil(211 * time.Second)
				if !tc.replace {
					ca.drop()
				}
				a.SleepUntil(212 * time.Second)
				cb, _ := b.join("u1", w.Token)
				if tc.replace {
					wantClose(t, ca, heartbeat.CloseReplaced)
				}
				a.SleepUntil(301 * time.Second)
				if at := b.at("u1", "idle", 1); at != 300*time.Second {
					t.Fatalf("idle(1) at %v, want 300s (the threshold after the activity at 0, on the older replica); %s", at, cl.histories("u1"))
				}
				if got := cl.count("u1", "idle"); got != 1 {
					t.Fatalf("idle callbacks after 301 s = %d, want 1; %s", got, cl.histories("u1"))
				}
				if f := cb.next(); f.Type != "idle" || f.Times != 1 {
					t.Fatalf("frame %+v, want idle 1", f)
				}
			})
		})
	}
}

// The idle count follows the user to the connection that takes over, to
// the last activity the old connection saw: not the one its replica last
// refreshed into the store (up to StoreRefreshInterval older). The old
// connection is replaced while still open (the client moved before its old
// network connection died), on another replica (which hands its latest
// activity over when it drops the connection) or on the same one.
func TestStoreIdleFollowsAReplacedConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		to   int
	}{{"other replica", 1}, {"same replica", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := newCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
				a, b := cl.envs[0], cl.envs[tc.to]
				token := a.Open("u1")
				ca, w := a.join("u1", token)
				a.SleepUntil(40 * time.Second)
				ca.send(`{"type":"activity"}`) // refreshed into the store at 42 s
				a.SleepUntil(52*time.Second + 500*time.Millisecond)
				ca.send(`{"type":"activity"}`) // the next refresh would be at 54 s
				a.SleepUntil(53 * time.Second)
				cb, _ := b.join("u1", w.Token)
				wantClose(t, ca, heartbeat.CloseReplaced)
				a.SleepUntil(160 * time.Second)
				if at := b.at("u1", "idle", 1); at != 152*time.Second+500*time.Millisecond {
					t.Fatalf("idle(1) at %v, want 152.5s (100 s after the last activity the old connection saw); %s", at, cl.histories("u1"))
				}
				if got := cl.count("u1", "idle"); got != 1 {
					t.Fatalf("idle callbacks after 160 s = %d, want 1; %s", got, cl.histories("u1"))
				}
				if f := cb.next(); f.Type != "idle" || f.Times != 1 {
					t.Fatalf("frame %+v, want idle 1", f)
				}
			})
		})
	}
}

// An idle threshold reported on one connection is not reported again when
// the user's connection moves while the old one is still open, and the
// user did nothing meanwhile: the old connection's activity is the one the
// store already has, even when the store's measure of it comes out a few
// milliseconds off. (It did fire twice: the old replica handed over the
// activity it had refreshed, 2 ms "later" by the store's measure, which
// started the idle count again on the new replica.)
func TestStoreIdleNotFiredAgainWhenAnIdleUserMoves(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		to                      int
		detachSkew, refreshSkew time.Duration
	}{
		{"other replica", 1, -2 * time.Millisecond, 0}, // the handover looks 2 ms later
		{"same replica", 0, 0, 2 * time.Millisecond},   // the store's activity looks 2 ms older
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := newCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
				cl.flaky[0].detachSkew, cl.flaky[0].refreshSkew = tc.detachSkew, tc.refreshSkew
				a, b := cl.envs[0], cl.envs[tc.to]
				ca, w := a.join("u1", a.Open("u1")) // activity at 0
				a.SleepUntil(101 * time.Second)
				if f := ca.next(); f.Type != "idle" || f.Times != 1 {
					t.Fatalf("frame %+v, want idle 1", f)
				}
				a.SleepUntil(110 * time.Second) // refreshed with 1 threshold reported
				cb, _ := b.join("u1", w.Token)
				wantClose(t, ca, heartbeat.CloseReplaced)
				a.SleepUntil(199 * time.Second)
				if got := cl.count("u1", "idle"); got != 1 {
					t.Fatalf("idle callbacks after the move = %d, want 1 (idle 1 fired once, before it); %s", got, cl.histories("u1"))
				}
				a.SleepUntil(201 * time.Second)
				nth := 1 // b's first idle callback, or a's second
				if b == a {
					nth = 2
				}
				if at := b.at("u1", "idle", nth); at != 200*time.Second {
					t.Fatalf("idle(2) at %v, want 200s (the second threshold after the activity at 0); %s", at, cl.histories("u1"))
				}
				if f := cb.next(); f.Type != "idle" || f.Times != 2 {
					t.Fatalf("frame %+v, want idle 2", f)
				}
			})
		})
	}
}

// An idle threshold fires once when the user's open connection moves to
// another replica right after it, before the old replica's next refresh:
// the old one recorded it in the store before firing it, so the new one's
// count goes on from it. (Without that record the new replica counted from
// the last refresh and fired idle 1 again at once.)
//
// With refreshes that take 2 s, the one that measured at 99 s (no
// threshold yet) reaches the store at 101 s: the threshold's record waits
// for it, or the late refresh would undo the record. With a record whose
// answer takes 2.5 s (recorded at 100 s, answered at 102.5 s), the
// refresh of 102 s waits for the answer and measures after it, or it
// would carry the count from before the threshold and undo the record.
func TestStoreIdleFiresOnceWhenTheConnectionMovesRightAfter(t *testing.T) {
	for _, c := range []struct {
		name                  string
		refresh, reportAnswer time.Duration
	}{
		{"plain", 0, 0},
		{"refresh takes 2s", 2 * time.Second, 0},
		{"record answered after 2.5s", 0, 2500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { idleFiresOnceWhenTheConnectionMoves(t, c.refresh, c.reportAnswer) })
		})
	}
}

func idleFiresOnceWhenTheConnectionMoves(t *testing.T, refreshDelay, reportAnswerDelay time.Duration) {
	cl := newCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
	cl.flaky[0].refreshDelay = refreshDelay
	cl.flaky[0].reportAnswerDelay = reportAnswerDelay
	a, b := cl.envs[0], cl.envs[1]
	ca, w := a.join("u1", a.Open("u1")) // activity at 0; refreshes at 3, 6, … 99, 102 s
	a.SleepUntil(103 * time.Second)
	if f := ca.next(); f.Type != "idle" || f.Times != 1 {
		t.Fatalf("frame %+v, want idle 1", f)
	}
	cb, _ := b.join("u1", w.Token)
	wantClose(t, ca, heartbeat.CloseReplaced)
	a.SleepUntil(199 * time.Second)
	if got := cl.count("u1", "idle"); got != 1 {
		t.Fatalf("idle callbacks after the move = %d, want 1; %s", got, cl.histories("u1"))
	}
	a.SleepUntil(201 * time.Second)
	if at := b.at("u1", "idle", 1); at != 200*time.Second {
		t.Fatalf("b's first idle at %v, want 200 s (the second threshold); %s", at, cl.histories("u1"))
	}
	if f := cb.next(); f.Type != "idle" || f.Times != 2 {
		t.Fatalf("frame %+v, want idle 2", f)
	}
}

// An idle threshold fires once when the replica that fired it dies before
// its next refresh: the replica that finds the session lost goes on from
// the next threshold.
func TestStoreIdleFiresOnceWhenItsOwnerDiesRightAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
		a := cl.envs[0]
		ca, _ := a.join("u1", a.Open("u1"))
		a.SleepUntil(100*time.Second + 500*time.Millisecond)
		if f := ca.next(); f.Type != "idle" || f.Times != 1 {
			t.Fatalf("frame %+v, want idle 1", f)
		}
		cl.flaky[0].kill() // before its refresh at 102 s
		a.l.Close()
		a.SleepUntil(150 * time.Second) // the owner lease ran out at 109 s
		if got := cl.count("u1", "disconnect"); got != 1 {
			t.Fatalf("disconnect callbacks = %d, want 1 (the sweeper's); %s", got, cl.histories("u1"))
		}
		if got := cl.count("u1", "idle"); got != 1 {
			t.Fatalf("idle callbacks = %d, want 1 (a's, not again by the sweeper); %s", got, cl.histories("u1"))
		}
		a.SleepUntil(201 * time.Second)
		if at := cl.envs[1].at("u1", "idle", 1); at != 200*time.Second {
			t.Fatalf("the sweeper's first idle at %v, want 200 s (the second threshold); %s", at, cl.histories("u1"))
		}
	})
}

// An idle threshold still being recorded when the client leaves fires
// once, on the sweeper: the detach leaves it out of the count it hands
// the store, whose record then refuses the late report. (Handed over as
// fired, it fired nowhere.) Refreshes take 2 s, so the report waits from
// 100 s to 101 s, past the drop at 100.5 s.
func TestStoreIdleBeingRecordedWhenTheClientLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
		cl.flaky[0].refreshDelay = 2 * time.Second
		a := cl.envs[0]
		ca, _ := a.join("u1", a.Open("u1"))
		a.SleepUntil(100*time.Second + 500*time.Millisecond)
		ca.drop()
		a.SleepUntil(150 * time.Second)
		if got := cl.count("u1", "idle"); got != 1 {
			t.Fatalf("idle callbacks = %d, want 1; %s", got, cl.histories("u1"))
		}
	})
}

// While the store is unreachable, the idle thresholds of a connected user
// still fire on the replica holding the connection, with the idle notice.
func TestStoreIdleFiresDuringAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second))
		a := cl.envs[0]
		ca, _ := a.join("u1", a.Open("u1"))
		for _, f := range cl.flaky {
			f.down.Store(true)
		}
		a.SleepUntil(101 * time.Second)
		if f := ca.next(); f.Type != "idle" || f.Times != 1 {
			t.Fatalf("frame %+v, want idle 1", f)
		}
		if at := a.at("u1", "idle", 1); at != 100*time.Second {
			t.Fatalf("idle 1 at %v, want 100 s; %s", at, cl.histories("u1"))
		}
		if !strings.Contains(cl.logs.String(), "recording an idle threshold in the store failed") {
			t.Fatalf("no warning about the unrecorded threshold:\n%s", cl.logs.String())
		}
	})
}

// A Detach that comes after another connection claimed the session (the
// page closed and reconnected elsewhere faster than the old replica told
// the store) changes nothing but the activity: a later one counts, and the
// replica now holding the connection hears of it with its age.
func TestMemoryStoreStaleDetachHandsOverActivity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := heartbeat.NewMemoryStore()
		r0, r1 := st.Replica("r0"), st.Replica("r1")
		var got []heartbeat.StoreMessage
		var mu sync.Mutex
		stop := r1.Listen(func(m heartbeat.StoreMessage) {
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		})
		defer stop()
		ctx := context.Background()
		timing := heartbeat.Timing{Window: time.Minute, Idle: 100 * time.Second}
		if err := st.Replica("r0").Open(ctx, "u1", "j", timing); err != nil {
			t.Fatal(err)
		}
		c0, err := r0.Claim(ctx, "u1", "j", "n1")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		c1, err := r1.Claim(ctx, "u1", "n1", "n2")
		if err != nil {
			t.Fatal(err)
		}
		if c1.ActivityAge != 30*time.Second {
			t.Fatalf("claim's ActivityAge %v, want 30s", c1.ActivityAge)
		}
		// r0's connection saw activity 2 s ago; an older one changes nothing.
		for _, age := range []time.Duration{2 * time.Second, 10 * time.Second} {
			if err := r0.Detach(ctx, "u1", heartbeat.Detach{Epoch: c0.Epoch, LastSeenAge: age, Grace: time.Second, ActivityAge: age, IdleTimes: 3}); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		if len(got) != 1 || got[0].Kind != heartbeat.MessageTouch || got[0].ActivityAge != 2*time.Second {
			t.Fatalf("messages to the new owner %+v, want one MessageTouch with ActivityAge 2s", got)
		}
		mu.Unlock()
		// Still connected to r1 (the stale Detach disconnected nothing): r1
		// detaches, and the next claim sees the handed-over activity.
		time.Sleep(time.Second)
		if err := r1.Detach(ctx, "u1", heartbeat.Detach{Epoch: c1.Epoch, Grace: time.Minute, ActivityAge: 3 * time.Second}); err != nil {
			t.Fatal(err)
		}
		c2, err := r0.Claim(ctx, "u1", "n2", "n3")
		if err != nil {
			t.Fatalf("claim after r1's detach: %v (the stale Detach must not have changed the resume nonce or the state)", err)
		}
		if !c2.Resumed || c2.ActivityAge != 3*time.Second || c2.IdleTimes != 0 {
			t.Fatalf("claim %+v, want resumed with ActivityAge 3s, IdleTimes 0", c2)
		}
	})
}

// A replica that dies (stops answering, its store calls fail, its
// connections gone) leaves its sessions to the others: the owner lease runs
// out, one replica reports the session lost, and the grace, counted from
// the last frame its owner reported, expires on exactly one replica.
func TestStoreDeadReplicaSessionsExpireElsewhereOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3)
		a := cl.envs[0]
		for i := range 10 {
			id := fmt.Sprintf("u%d", i)
			a.join(id, a.Open(id))
		}
		a.SleepUntil(20 * time.Second) // a few refreshes
		cl.flaky[0].down.Store(true)   // replica 0 dies: nothing it says reaches the store
		a.l.Close()
		a.SleepUntil(20*time.Second + heartbeat.StoreOwnerTTL + 5*time.Second)
		for i := range 10 {
			id := fmt.Sprintf("u%d", i)
			if n := cl.count(id, "disconnect"); n != 1 {
				t.Fatalf("%s: %d disconnect callbacks, want 1: %s", id, n, cl.histories(id))
			}
		}
		a.SleepUntil(20*time.Second + heartbeat.DefaultReconnectWindow + heartbeat.StoreOwnerTTL + 5*time.Second)
		for i := range 10 {
			id := fmt.Sprintf("u%d", i)
			if n := cl.count(id, "expire"); n != 1 {
				t.Fatalf("%s: %d expire callbacks, want 1: %s", id, n, cl.histories(id))
			}
			if a.rec.history(id) != "connect" {
				t.Fatalf("the dead replica fired callbacks: %s", cl.histories(id))
			}
			for _, e := range cl.envs[1:] {
				for _, r := range e.rec.of(id) {
					if r.kind == "expire" {
						// the last refresh (≤ 18 s) reported a frame at most
						// a ping interval old: the grace runs from it.
						at := r.ev.At.Sub(a.start)
						if at < 5*time.Second+heartbeat.DefaultReconnectWindow || at > 21*time.Second+heartbeat.DefaultReconnectWindow+heartbeat.StoreOwnerTTL {
							t.Fatalf("%s expired at %v", id, at)
						}
					}
				}
			}
		}
		if cl.store.Len() != 0 {
			t.Fatalf("store still has %d sessions", cl.store.Len())
		}
	})
}

// While the store is unreachable, connected clients stay connected, Open
// and Send fail with a *StoreError, and a hello is refused with 1013 (try
// again later). When it is back, everything goes on.
func TestStoreUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, heartbeat.WithIdleThreshold(time.Hour))
		a, b := cl.envs[0], cl.envs[1]
		ca, w := a.join("u1", a.Open("u1"))
		pending := b.Open("u2")
		for _, f := range cl.flaky {
			f.down.Store(true)
		}
		a.SleepUntil(5 * time.Minute)
		if !ca.isOpen() {
			t.Fatal("a connected client was closed while the store was unreachable")
		}
		var se *heartbeat.StoreError
		if _, err := a.srv.Open(context.Background(), "u3"); !errors.As(err, &se) || se.Op != "open" {
			t.Fatalf("Open: %v, want a *StoreError", err)
		}
		if err := b.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue}); !errors.As(err, &se) {
			t.Fatalf("Send: %v, want a *StoreError", err)
		}
		if err := a.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 1}); err != nil {
			t.Fatalf("Send on the replica holding the client: %v", err)
		}
		if f := ca.next(); f.Type != "queue" {
			t.Fatalf("frame %+v", f)
		}
		x := b.hello("u2", pending)
		if reason := wantClose(t, x, websocket.CloseTryAgainLater); !strings.Contains(reason, "try again") {
			t.Fatalf("reason %q", reason)
		}
		if !strings.Contains(cl.logs.String(), "they stay connected") {
			t.Fatalf("no warning about failed refreshes in the log:\n%s", cl.logs.String())
		}
		for _, f := range cl.flaky {
			f.down.Store(false)
		}
		a.SleepUntil(5*time.Minute + 5*time.Second)
		// Nobody could sweep during the outage, so the first sweep after
		// it gives the owners a lease to refresh before counting them
		// gone: the session was never lost.
		if got, want := cl.histories("u1"), "r0[connect] r1[]"; got != want {
			t.Fatalf("callbacks after the outage:\n got %s\nwant %s", got, want)
		}
		b.join("u2", b.Open("u2")) // its first grace passed during the outage; a new Open works
		ca.drop()
		b.join("u1", w.Token)
	})
}

// A store restarted empty is detected by the next refresh, logged at
// error level, and rebuilt from the connections held: the clients' resume
// tokens keep working, on any replica.
func TestStoreRestartedEmpty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2)
		a, b := cl.envs[0], cl.envs[1]
		ca, w := a.join("u1", a.Open("u1"))
		cl.store.Forget()
		a.SleepUntil(heartbeat.StoreRefreshInterval + time.Second)
		if !strings.Contains(cl.logs.String(), "level=ERROR") || !strings.Contains(cl.logs.String(), "lost its data") {
			t.Fatalf("no error log about the lost store:\n%s", cl.logs.String())
		}
		if cl.store.Len() != 1 {
			t.Fatalf("store has %d sessions after the rebuild, want 1", cl.store.Len())
		}
		ca.drop()
		synctest.Wait()
		cb, _ := b.join("u1", w.Token)
		if !cb.isOpen() {
			t.Fatal("resume after the rebuild failed")
		}
	})
}

// Drain closes every connection with 1001 "going away, reconnect", fires
// no callback and ends no session: a Go client resumes on another replica.
func TestStoreDrainHandsSessionsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2)
		a, b := cl.envs[0], cl.envs[1]
		token := a.Open("u1")
		var mu sync.Mutex
		target := a.l
		d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			l := target
			mu.Unlock()
			return l.DialContext(ctx, network, addr)
		}}
		s, err := hbclient.Connect(context.Background(), wsURL, "u1", token, hbclient.WithDialer(d))
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		defer s.Close()
		synctest.Wait() // OnConnect has run
		mu.Lock()
		target = b.l
		mu.Unlock()
		if err := a.srv.Drain(context.Background()); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		a.SleepUntil(30 * time.Second)
		if s.State() != hbclient.StateConnected {
			t.Fatalf("client state %v after the drain, want connected (to the other replica)", s.State())
		}
		if got, want := cl.histories("u1"), "r0[connect] r1[resume]"; got != want {
			t.Fatalf("callbacks:\n got %s\nwant %s", got, want)
		}
		if _, err := a.srv.Open(context.Background(), "u2"); !errors.Is(err, heartbeat.ErrServerClosed) {
			t.Fatalf("Open after Drain: %v", err)
		}
	})
}

// Without a Store, Drain closes every connection with 1001 "going away,
// reconnect" and fires no callback; the Server is closed afterwards.
func TestDrainWithoutStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, _ := e.join("u1", e.Open("u1"))
		synctest.Wait()
		if err := e.srv.Drain(context.Background()); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if reason := wantClose(t, c, heartbeat.CloseGoingAway); reason != "going away, reconnect" {
			t.Fatalf("reason %q", reason)
		}
		time.Sleep(time.Hour)
		wantHistory(t, e, "u1", "connect")
		if _, err := e.srv.Open(context.Background(), "u2"); !errors.Is(err, heartbeat.ErrServerClosed) {
			t.Fatalf("Open after Drain: %v", err)
		}
		if err := e.srv.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown after Drain: %v", err)
		}
	})
}
