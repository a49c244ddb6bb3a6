// Package hbstoretest is the conformance suite of heartbeat.Store: the
// contract of every method, as heartbeat/store.go documents it, written
// once and asserted on each implementation (the in-memory store in package
// heartbeat's tests, the Redis one in car/redisstore's, on miniredis and on
// a real redis-server).
//
// A case calls the store directly, as the heartbeat.Servers of several
// replicas would: each replica has its own view (Backend.Replica), whose
// Listen records the messages routed to it. Time is the store's clock:
// run in a testing/synctest bubble (Config.Synctest) a case lets time pass
// with time.Sleep, which moves the bubble's fake clock, and so the memory
// store's clock (time.Now) and a miniredis' (its TIME and TTLs follow
// time.Now in a bubble). Without a bubble (a real redis-server, whose clock
// nobody can move) the cases that need time to pass are skipped, with the
// reason, and the ages a store reports are compared with a slack.
package hbstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Backend is one shared store under test, made for one case.
type Backend struct {
	// Replica returns the view of the store of replica name (a short
	// lowercase word), as that replica's Server would have it: its own
	// connection, if any, and ready to receive the messages routed to it
	// as soon as its Listen is registered. Each name is asked for once.
	Replica func(name string) heartbeat.Store
	// Kill makes replica name gone, as a process that died: nothing routed
	// to it is received any more, and the store can tell (the suite has
	// stopped its Listen already). Nil: stopping Listen is enough.
	Kill func(name string)
	// Wipe makes the store lose all its data, as a store restarted empty.
	// Nil: the case of a store that lost its data is skipped.
	Wipe func()
	// Down makes the store unreachable for every replica until Up. Nil:
	// the store cannot be unreachable, and that case is skipped.
	Down func()
	// Up makes it reachable again, with the data it had. Nil: once down it
	// stays down for the rest of the case (the case checks the errors
	// only).
	Up func()
}

// Config says how to run the suite on one implementation.
type Config struct {
	// New makes the store for one case. It is called inside the case's
	// bubble with Synctest; it may register cleanups on t.
	New func(t *testing.T) Backend
	// Synctest runs each case in a testing/synctest bubble: the store's
	// clock must be the bubble's (time.Now). Without it, the store's clock
	// is real, and the cases that need time to pass are skipped.
	Synctest bool
}

// Timing of the suite's sessions, unless a case says otherwise.
var timing = heartbeat.Timing{Window: time.Minute, Idle: 5 * time.Minute}

// realSlack is how far an age may be off on a real clock: the round trips
// between the store's readings.
const realSlack = 2 * time.Second

// Run runs every case on the stores cfg.New makes.
func Run(t *testing.T, cfg Config) {
	cases := []struct {
		name  string
		timed bool // needs time to pass
		run   func(*suite)
	}{
		{"JoinConsumedEverywhere", false, joinConsumedEverywhere},
		{"ResumeReplacesTheOwner", false, resumeReplacesTheOwner},
		{"ReplacedOwnerGone", false, replacedOwnerGone},
		{"OpenRenewsTheJoinNonce", false, openRenewsTheJoinNonce},
		{"DetachAndResume", false, detachAndResume},
		{"DetachRevokesTheResumeNonce", false, detachRevokes},
		{"StaleDetachHandsOverActivity", false, staleDetachHandsOverActivity},
		{"StaleDetachOfAKnownActivity", false, staleDetachOfAKnownActivity},
		{"RefreshStatuses", false, refreshStatuses},
		{"TouchTellsTheOwner", false, touchTellsTheOwner},
		{"NoticesKeptWhileAway", false, noticesKeptWhileAway},
		{"NoticeRoutedToTheOwner", false, noticeRoutedToTheOwner},
		{"NoticeForAGoneOwnerIsKept", false, noticeForAGoneOwnerIsKept},
		{"NoticeRacingAClaim", false, noticeRacingAClaim},
		{"EndRemovesTheSession", false, endRemovesTheSession},
		{"ListenStops", false, listenStops},
		{"RestartedEmpty", false, restartedEmpty},
		{"Unreachable", false, unreachable},
		{"IdleReportIsTheStores", false, idleReportIsTheStores},
		{"ToldActivityOutlivesOlderReports", false, toldActivityOutlivesOlderReports},
		{"OpenGraceExpires", true, openGraceExpires},
		{"DetachGraceFromTheLastFrame", true, detachGraceFromTheLastFrame},
		{"StaleDetachChangesNothing", true, staleDetachChangesNothing},
		{"StaleDetachMovesTheIdleThreshold", true, staleDetachMovesTheIdleThreshold},
		{"DeadlinesFireOnce", true, deadlinesFireOnce},
		{"SweepLimit", true, sweepLimit},
		{"OwnerLeaseRunsOut", true, ownerLeaseRunsOut},
		{"OwnersHeldAfterAnOutage", true, ownersHeldAfterAnOutage},
		{"IdleCountFollowsTheUser", true, idleCountFollowsTheUser},
		{"ConnectedIdleIsTheOwnersJob", true, connectedIdleIsTheOwnersJob},
		{"EndedSessionFiresNothing", true, endedSessionFiresNothing},
		{"IdleReportedIsNotSweptAgain", true, idleReportedIsNotSweptAgain},
		{"ToldActivityLapses", true, toldActivityLapses},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.timed && !cfg.Synctest {
				t.Skip("hbstoretest: skipped: this store's clock is real (a redis-server's TIME), and this case needs time to pass; it runs on the stores whose clock a test moves (memory, miniredis)")
			}
			body := func(t *testing.T) {
				s := &suite{t: t, be: cfg.New(t), bubble: cfg.Synctest, reps: map[string]*replica{}}
				if !s.bubble {
					s.slack = realSlack
				}
				c.run(s)
			}
			if cfg.Synctest {
				synctest.Test(t, body)
			} else {
				body(t)
			}
		})
	}
}

// suite is one case's state.
type suite struct {
	t      *testing.T
	be     Backend
	bubble bool
	slack  time.Duration
	reps   map[string]*replica
	fences int
}

// replica is one replica's view and the messages routed to it.
type replica struct {
	name string
	st   heartbeat.Store
	msgs chan heartbeat.StoreMessage
	stop func()
}

func ctx() context.Context { return context.Background() }

// rep returns replica name, made (and listening) on first use.
func (s *suite) rep(name string) *replica {
	if r := s.reps[name]; r != nil {
		return r
	}
	r := &replica{name: name, st: s.be.Replica(name), msgs: make(chan heartbeat.StoreMessage, 256)}
	r.stop = r.st.Listen(func(m heartbeat.StoreMessage) {
		m.Frame = slices.Clone(m.Frame)
		select {
		case r.msgs <- m:
		default:
			s.t.Errorf("replica %s: more than 256 messages not read", name)
		}
	})
	s.t.Cleanup(func() { r.stop() })
	s.reps[name] = r
	return r
}

// kill makes replica r gone.
func (s *suite) kill(r *replica) {
	r.stop()
	r.stop = func() {}
	if s.be.Kill != nil {
		s.be.Kill(r.name)
	}
}

// advance lets d pass on the store's clock.
func (s *suite) advance(d time.Duration) {
	if !s.bubble {
		s.t.Fatal("hbstoretest: advance outside a bubble")
	}
	time.Sleep(d)
}

func (s *suite) must(err error, what string) {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

// retry calls f until it does not fail with a *heartbeat.StoreError (a
// client reconnecting after the store came back), 50 times at most.
func (s *suite) retry(f func() error) {
	s.t.Helper()
	var err error
	for range 50 {
		var se *heartbeat.StoreError
		if err = f(); !errors.As(err, &se) {
			break
		}
	}
	s.must(err, "once the store is back")
}

func (s *suite) open(r *replica, id, join string, t heartbeat.Timing) {
	s.t.Helper()
	s.must(r.st.Open(ctx(), id, join, t), fmt.Sprintf("%s: Open(%s)", r.name, id))
}

func (s *suite) claim(r *replica, id, used, resume string) heartbeat.Claim {
	s.t.Helper()
	cl, err := r.st.Claim(ctx(), id, used, resume)
	s.must(err, fmt.Sprintf("%s: Claim(%s, %s)", r.name, id, used))
	return cl
}

// connect opens id with join nonce "j-"+id and claims it on r with resume
// nonce resume.
func (s *suite) connect(r *replica, id, resume string, t heartbeat.Timing) heartbeat.Claim {
	s.t.Helper()
	s.open(r, id, "j-"+id, t)
	return s.claim(r, id, "j-"+id, resume)
}

func (s *suite) wantClaimErr(r *replica, id, used string, want error) {
	s.t.Helper()
	if _, err := r.st.Claim(ctx(), id, used, "never"); !errors.Is(err, want) {
		s.t.Fatalf("%s: Claim(%s, %s): %v, want %v", r.name, id, used, err, want)
	}
}

// approx reports whether an age the store reported is want (within the
// slack on a real clock, never less).
func (s *suite) approx(got, want time.Duration) bool {
	return got >= want && got <= want+s.slack
}

// next returns the next message routed to r.
func (s *suite) next(r *replica) heartbeat.StoreMessage {
	s.t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(5 * time.Second):
		s.t.Fatalf("replica %s: no message within 5 s", r.name)
	}
	return heartbeat.StoreMessage{}
}

// fence returns every message routed to r before now: it routes one more
// (a notice to a session r owns, made for that) and reads up to it. Routed
// messages arrive in the order the store routed them.
func (s *suite) fence(r *replica) []heartbeat.StoreMessage {
	s.t.Helper()
	s.fences++
	id := fmt.Sprintf("fence-%s-%d", r.name, s.fences)
	s.connect(r, id, "r", timing)
	s.must(r.st.Notify(ctx(), id, "fence", []byte(id)), "fence: Notify")
	var got []heartbeat.StoreMessage
	for {
		m := s.next(r)
		if m.Session == id {
			break
		}
		got = append(got, m)
	}
	s.must(r.st.End(ctx(), id, "fence"), "fence: End")
	return got
}

// quiet checks that nothing was routed to the replicas.
func (s *suite) quiet(rs ...*replica) {
	s.t.Helper()
	for _, r := range rs {
		if got := s.fence(r); len(got) != 0 {
			s.t.Fatalf("replica %s got messages it should not have: %+v", r.name, got)
		}
	}
}

func (s *suite) wantMsg(r *replica, want heartbeat.StoreMessage) {
	s.t.Helper()
	got := s.next(r)
	if got.Kind != want.Kind || got.Session != want.Session || got.Epoch != want.Epoch ||
		got.Key != want.Key || string(got.Frame) != string(want.Frame) || got.Reason != want.Reason {
		s.t.Fatalf("replica %s got %+v, want %+v", r.name, got, want)
	}
}

func (s *suite) refresh(r *replica, held ...heartbeat.Held) heartbeat.RefreshResult {
	s.t.Helper()
	res, err := r.st.Refresh(ctx(), held)
	s.must(err, r.name+": Refresh")
	if len(res.Status) != len(held) {
		s.t.Fatalf("%s: Refresh of %d connections: %d statuses", r.name, len(held), len(res.Status))
	}
	return res
}

func held(id string, cl heartbeat.Claim, resume string, t heartbeat.Timing) heartbeat.Held {
	return heartbeat.Held{Session: id, Epoch: cl.Epoch, Resume: resume, Timing: t}
}

// sweep sweeps on every replica given, several callers each at the same
// time, until nothing more is due now, and returns every deadline taken
// (the fence sessions' left out).
func (s *suite) sweep(rs ...*replica) []heartbeat.Due {
	s.t.Helper()
	var mu sync.Mutex
	var all []heartbeat.Due
	for {
		var wg sync.WaitGroup
		n := len(all)
		for _, r := range rs {
			for range 3 {
				wg.Go(func() {
					d, err := r.st.Sweep(ctx(), 100)
					if err != nil {
						s.t.Errorf("%s: Sweep: %v", r.name, err)
						return
					}
					if len(d) > 100 {
						s.t.Errorf("%s: Sweep(100) took %d deadlines", r.name, len(d))
					}
					mu.Lock()
					all = append(all, d...)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		if s.t.Failed() {
			s.t.FailNow()
		}
		if len(all) == n {
			break
		}
	}
	return slices.DeleteFunc(all, func(d heartbeat.Due) bool { return strings.HasPrefix(d.Session, "fence-") })
}

// sweepNothing checks that nothing is due.
func (s *suite) sweepNothing(what string, rs ...*replica) {
	s.t.Helper()
	if d := s.sweep(rs...); len(d) != 0 {
		s.t.Fatalf("%s: deadlines taken: %s", what, dues(d))
	}
}

func dues(d []heartbeat.Due) string {
	var parts []string
	for _, x := range d {
		parts = append(parts, due(x))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func due(x heartbeat.Due) string {
	switch x.Kind {
	case heartbeat.DueIdle:
		return fmt.Sprintf("idle(%s,%d)", x.Session, x.Times)
	case heartbeat.DueLost:
		return fmt.Sprintf("lost(%s)", x.Session)
	case heartbeat.DueExpired:
		return fmt.Sprintf("expired(%s)", x.Session)
	}
	return fmt.Sprintf("kind%d(%s)", x.Kind, x.Session)
}
