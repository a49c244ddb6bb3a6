package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
)

// logRecorder keeps the warn and error records of the Stores' loggers.
type logRecorder struct {
	mu   sync.Mutex
	recs []string // "replica LEVEL message"
}

func (l *logRecorder) logger(name string) *slog.Logger {
	return slog.New(&recordHandler{l: l, name: name})
}

// count counts the records of a level whose message contains sub, by
// replica.
func (l *logRecorder) count(level slog.Level, sub string) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, r := range l.recs {
		name, rest, _ := strings.Cut(r, " ")
		lv, msg, _ := strings.Cut(rest, " ")
		if lv == level.String() && strings.Contains(msg, sub) {
			out[name]++
		}
	}
	return out
}

type recordHandler struct {
	l    *logRecorder
	name string
}

func (h *recordHandler) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.l.mu.Lock()
	h.l.recs = append(h.l.recs, h.name+" "+r.Level.String()+" "+r.Message)
	h.l.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

const rebuiltMsg = "Redis lost the leases and the queue"

// generations checks that no generation was handed out twice: each
// heartbeat session id names one user's lease.
type generations struct {
	t    *testing.T
	seen map[uint64]string
}

func (g *generations) add(l *car.Lease) {
	g.t.Helper()
	user, gen, ok := car.ParseSessionID(l.HeartbeatSession)
	if !ok {
		g.t.Fatalf("heartbeat session %q", l.HeartbeatSession)
	}
	if prev, dup := g.seen[gen]; dup && prev != user {
		g.t.Errorf("generation %d handed out twice: to %s and %s", gen, prev, user)
	}
	g.seen[gen] = user
}

func (g *generations) max() uint64 {
	var m uint64
	for gen := range g.seen {
		m = max(m, gen)
	}
	return m
}

// TestLeasesRebuiltAfterDataLoss: three replicas on one Redis, a
// project of 3 concurrencies: 3 active leases (one per replica), 4 users
// queued through the three replicas, and a release in progress (its
// DestroySession failed once with HTTP 500 and waits for its retry) when
// Redis loses everything (FLUSHALL). Every replica logs the loss once at
// error level and writes back what it holds; the release goes on and
// finishes once; generations after the loss are past every earlier one;
// the queue keeps its order. Then one replica is killed (its Store cut
// off) and the others release its users: each lease is released once,
// every queued user is admitted in order, and nothing is left in CAR.
func TestLeasesRebuiltAfterDataLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := redistest.Pipe(t)
		logs := &logRecorder{}
		f := newLeaseFleetWith(t, 3, 3, func() redis.UniversalClient { return redistest.PipeClient(t, m) },
			func(name string) []Option { return []Option{WithLogger(logs.logger(name))} },
			func(st *Store) car.ManagerOption { return car.WithLeaseStore(st.Leases()) })
		r1, r2, r3 := f.Reps[0], f.Reps[1], f.Reps[2]
		gens := &generations{t: t, seen: map[uint64]string{}}
		for i, r := range f.Reps {
			gens.add(f.Start(r, fmt.Sprintf("a%d", i+1)))
		}
		queued := []string{"q1", "q2", "q3", "q4"}
		for i, u := range queued {
			l := f.Start(f.Reps[i%3], u)
			if l.QueuePosition != i+1 {
				t.Fatalf("%s: position %d, want %d", u, l.QueuePosition, i+1)
			}
			gens.add(l)
		}
		before := gens.max()

		// a1 (started on r1) is released through r2; its DestroySession
		// fails with HTTP 500 and is retried after a backoff.
		if err := f.CAR.InjectFault("DestroySession", cartest.Fault{Code: car.CodeInternalError, Message: "HTTP 500", HTTPStatus: 500}); err != nil {
			t.Fatal(err)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- r2.Mgr.Stop(t.Context(), "a1") }()
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if f.Count(cartest.EventDestroyed, "a1") != 0 {
			t.Fatal("a1 destroyed before the data loss")
		}
		m.FlushAll()

		if err := <-stopped; err != nil {
			t.Fatalf("Stop(a1) across the data loss: %v", err)
		}
		time.Sleep(time.Second) // every replica's queue runner polls (200 ms)
		synctest.Wait()
		logs.mu.Lock()
		t.Logf("warnings and errors: %q", logs.recs)
		logs.mu.Unlock()
		for _, r := range f.Reps {
			if n := logs.count(slog.LevelError, rebuiltMsg)[r.Name]; n != 1 {
				t.Errorf("%s logged the data loss %d times, want once", r.Name, n)
			}
		}
		obs := f.store(r1).Leases()
		for _, u := range []string{"a2", "a3"} {
			rec, ok, err := obs.Get(t.Context(), u)
			if err != nil || !ok || rec.State != car.LeaseActive || rec.ServerSession == "" {
				t.Errorf("%s after the rebuild: %+v %v %v, want active with its ServerSession", u, rec, ok, err)
			}
		}
		// a1's place went to q1; the others keep their order.
		pos, err := obs.Positions(t.Context(), queued)
		if err != nil || fmt.Sprint(pos) != "[0 1 2 3]" {
			t.Errorf("queue positions of %v after the rebuild: %v %v, want [0 1 2 3]", queued, pos, err)
		}
		if l := f.Start(r3, "n1"); l.QueuePosition != 4 {
			t.Errorf("a user joining after the rebuild: position %d, want 4 (behind the rebuilt queue)", l.QueuePosition)
		} else {
			gens.add(l)
		}
		if g := gens.max(); g <= before || g < 1<<32 {
			t.Errorf("the first generation after the loss is %d, want past %d and at least 1<<32", g, before)
		}

		// r3 is killed; its users are released through the others.
		_ = f.store(r3).Close()
		r3.Tr.Base.(interface{ CloseIdleConnections() }).CloseIdleConnections()
		for _, u := range []string{"a2", "a3", "q1", "q2", "q3", "q4", "n1"} {
			time.Sleep(2 * time.Second) // the next in the queue is admitted
			synctest.Wait()
			if err := f.Reps[len(u)%2].Mgr.Stop(t.Context(), u); err != nil {
				t.Fatalf("Stop(%s): %v", u, err)
			}
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()

		var admitted []string
		for _, e := range f.CAR.Events() {
			if e.Kind == cartest.EventLocked && (strings.HasPrefix(e.Subject, "q") || e.Subject == "n1") {
				admitted = append(admitted, e.Subject)
			}
		}
		if want := append(slices.Clone(queued), "n1"); !slices.Equal(admitted, want) {
			t.Errorf("admitted %v, want %v", admitted, want)
		}
		rel := f.Released()
		byUser := map[string]int{}
		for _, r := range rel {
			byUser[strings.Fields(r)[1]]++
		}
		for _, u := range append([]string{"a1", "a2", "a3", "n1"}, queued...) {
			if byUser[u] != 1 {
				t.Errorf("%s released %d times, want once (releases: %v)", u, byUser[u], rel)
			}
			if n := f.Count(cartest.EventDestroyed, u); n != 1 {
				t.Errorf("%s destroyed %d times in CAR, want once", u, n)
			}
			if c, held := f.CAR.User(u); held {
				t.Errorf("%s still holds %+v in CAR", u, c)
			}
		}
		for _, c := range f.CAR.Concurrencies() {
			if c.State != cartest.StateIdle {
				t.Errorf("left in CAR: %v", c)
			}
		}
	})
}

// TestLeasesRebuildInChunks: a replica holding more leases than one
// rebuild script carries (rebuildChunk) writes them all back, queued ones
// with their tickets in order; a second replica's rebuild leaves them as
// they are; the counter is past every generation.
func TestLeasesRebuildInChunks(t *testing.T) {
	m := redistest.Mini(t)
	logs := &logRecorder{}
	var stores []*Store
	for _, name := range []string{"r1", "r2"} {
		st, err := New(redistest.MiniClient(t, m), leaseProject, WithReplicaID(name), WithLogger(logs.logger(name)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		stores = append(stores, st)
	}
	ctx := t.Context()
	a, b := stores[0].Leases(), stores[1].Leases()
	const n = 2*rebuildChunk + 50
	var held []car.LeaseRecord
	for i := range n {
		u := fmt.Sprintf("u%03d", i)
		rec, ok, err := a.Create(ctx, car.CreateLease{Request: car.StartRequest{UserId: u}, Hold: time.Minute})
		if err != nil || !ok {
			t.Fatalf("Create(%s): %v %v", u, ok, err)
		}
		if i%2 == 0 {
			rec, err = a.Update(ctx, u, rec.Generation, car.LeaseUpdate{State: car.LeaseActive, Applied: true, ServerSession: "ss-" + u})
		} else {
			rec, err = a.Update(ctx, u, rec.Generation, car.LeaseUpdate{State: car.LeaseQueued})
		}
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rec)
	}
	if _, err := b.QueueLen(ctx); err != nil { // b learns the mark
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "u000"); err != nil {
		t.Fatal(err)
	}
	a.(car.LeaseRebuilder).OnDataLoss(func() []car.LeaseRecord { return held })
	b.(car.LeaseRebuilder).OnDataLoss(func() []car.LeaseRecord { return held[:10] })
	m.FlushAll()
	if _, ok, err := b.Get(ctx, "u100"); err != nil || ok {
		t.Fatalf("b, holding u000..u009, rebuilt first: u100 %v %v, want none yet", ok, err)
	}
	for i, want := range held {
		rec, ok, err := a.Get(ctx, want.UserId)
		if err != nil || !ok || rec.Generation != want.Generation || rec.State != want.State || rec.ServerSession != want.ServerSession {
			t.Fatalf("%s after the rebuild: %+v %v %v, want %+v", want.UserId, rec, ok, err, want)
		}
		if i >= 10 && rec.Ticket != want.Ticket {
			t.Errorf("%s: ticket %d, want %d", want.UserId, rec.Ticket, want.Ticket)
		}
	}
	var users []string
	for _, r := range held {
		if r.State == car.LeaseQueued {
			users = append(users, r.UserId)
		}
	}
	pos, err := a.Positions(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pos {
		if p != i+1 {
			t.Fatalf("%s at position %d, want %d", users[i], p, i+1)
		}
	}
	rec, ok, err := a.Create(ctx, car.CreateLease{Request: car.StartRequest{UserId: "new"}, Hold: time.Minute})
	if err != nil || !ok || rec.Generation < 1<<32 {
		t.Errorf("the first lease after the loss: %+v %v %v, want a generation from 1<<32", rec, ok, err)
	}
	if got := logs.count(slog.LevelError, rebuiltMsg); got["r1"] != 1 || got["r2"] != 1 {
		t.Errorf("the loss logged %v times by replica, want once each", got)
	}
}
