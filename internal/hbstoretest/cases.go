package hbstoretest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// joinConsumedEverywhere: a join nonce claimed on one replica is used up on
// every replica; a nonce that was never the session's is refused without
// consuming anything; an unknown session is ErrUnknownSession. The first
// claim is a connect (not Resumed), with the timeline Open recorded, a
// fresh idle count and no previous owner.
func joinConsumedEverywhere(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	s.open(a, "u1", "j1", timing)
	s.wantClaimErr(c, "u1", "wrong", heartbeat.ErrTokenUsed)
	s.wantClaimErr(c, "u1", "", heartbeat.ErrTokenUsed)
	cl := s.claim(b, "u1", "j1", "r1")
	if cl.Resumed || cl.Epoch == 0 || cl.PrevOwner != "" || cl.PrevGone || cl.Timing != timing ||
		cl.IdleTimes != 0 || !s.approx(cl.ActivityAge, 0) || len(cl.Notices) != 0 {
		s.t.Fatalf("first claim: %+v", cl)
	}
	for _, r := range []*replica{a, b, c} {
		s.wantClaimErr(r, "u1", "j1", heartbeat.ErrTokenUsed)
	}
	s.wantClaimErr(a, "nobody", "j1", heartbeat.ErrUnknownSession)
	// The refused claims changed nothing: the resume nonce works.
	if cl2 := s.claim(c, "u1", "r1", "r2"); !cl2.Resumed || cl2.Epoch <= cl.Epoch {
		s.t.Fatalf("resume after refused claims: %+v (first epoch %d)", cl2, cl.Epoch)
	}
}

// resumeReplacesTheOwner: a resume on another replica makes it the owner
// with a newer epoch, names the previous owner and epoch, tells that
// replica (MessageReplaced with the old epoch) and nobody else, and uses
// the resume nonce up everywhere. A resume on the owner replica itself
// tells nobody.
func resumeReplacesTheOwner(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	first := s.connect(a, "u1", "r1", timing)
	cl := s.claim(b, "u1", "r1", "r2")
	if !cl.Resumed || cl.Epoch <= first.Epoch || cl.PrevOwner != a.st.Replica() || cl.PrevEpoch != first.Epoch || cl.PrevGone || cl.Timing != timing {
		s.t.Fatalf("resume on b: %+v, want resumed, previous owner %s epoch %d", cl, a.st.Replica(), first.Epoch)
	}
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: first.Epoch})
	s.quiet(a, b, c)
	for _, r := range []*replica{a, b, c} {
		s.wantClaimErr(r, "u1", "r1", heartbeat.ErrTokenUsed)
	}
	again := s.claim(b, "u1", "r2", "r3")
	if !again.Resumed || again.Epoch <= cl.Epoch || again.PrevOwner != b.st.Replica() || again.PrevEpoch != cl.Epoch || again.PrevGone {
		s.t.Fatalf("resume on the owner replica: %+v", again)
	}
	s.quiet(a, b, c)
}

// replacedOwnerGone: a resume that replaces a connection of a replica that
// is gone reports PrevGone (nobody received the message).
func replacedOwnerGone(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	first := s.connect(a, "u1", "r1", timing)
	s.kill(a)
	cl := s.claim(b, "u1", "r1", "r2")
	if cl.PrevOwner != a.st.Replica() || cl.PrevEpoch != first.Epoch || !cl.PrevGone {
		s.t.Fatalf("resume replacing a dead replica's connection: %+v, want PrevGone", cl)
	}
}

// openRenewsTheJoinNonce: Open of an existing session gives it a new join
// nonce: the old one stops working, the new one works once. A join claim
// of a session a client connected to before is a resume.
func openRenewsTheJoinNonce(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	s.open(a, "u1", "j1", timing)
	s.open(b, "u1", "j2", timing)
	s.wantClaimErr(a, "u1", "j1", heartbeat.ErrTokenUsed)
	first := s.claim(a, "u1", "j2", "r1")
	if first.Resumed {
		s.t.Fatalf("first claim after two Opens: %+v, want a connect", first)
	}
	// Open of a connected session: a new join nonce, and the connection
	// keeps its session.
	s.open(b, "u1", "j3", timing)
	res := s.refresh(a, held("u1", first, "r1", timing))
	if res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("refresh after Open of a connected session: %+v", res)
	}
	cl := s.claim(b, "u1", "j3", "r2")
	if !cl.Resumed || cl.PrevOwner != a.st.Replica() || cl.PrevEpoch != first.Epoch {
		s.t.Fatalf("claim with the new join nonce: %+v, want a resume replacing a's connection", cl)
	}
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: first.Epoch})
	s.wantClaimErr(a, "u1", "j3", heartbeat.ErrTokenUsed)
	s.wantClaimErr(a, "u1", "r1", heartbeat.ErrTokenUsed)
}

// detachAndResume: after a detach the session is disconnected: the next
// claim is a resume with no previous owner (nobody to tell), and it gets
// the idle count the detach handed back.
func detachAndResume(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	first := s.connect(a, "u1", "r1", timing)
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: first.Epoch, Grace: time.Minute, ActivityAge: 90 * time.Second, IdleTimes: 0}), "Detach")
	cl := s.claim(b, "u1", "r1", "r2")
	if !cl.Resumed || cl.PrevOwner != "" || cl.PrevGone || cl.Epoch <= first.Epoch || !s.approx(cl.ActivityAge, 90*time.Second) || cl.IdleTimes != 0 {
		s.t.Fatalf("resume after a detach: %+v, want resumed, no previous owner, activity 90s ago", cl)
	}
	s.quiet(a, b)
	// A detach of an epoch that is not the current one changes nothing
	// but the activity (StaleDetachHandsOverActivity): b's connection
	// still owns the session.
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: first.Epoch, Grace: time.Second}), "stale Detach")
	if res := s.refresh(b, held("u1", cl, "r2", timing)); res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("refresh after a stale detach: %+v", res)
	}
	next := s.claim(a, "u1", "r2", "r3")
	if next.PrevOwner != b.st.Replica() || next.PrevEpoch != cl.Epoch {
		s.t.Fatalf("claim after a stale detach: %+v, want b's connection replaced", next)
	}
}

// detachRevokes: a detach with Revoke invalidates the resume nonce; a new
// Open brings the user back.
func detachRevokes(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	first := s.connect(a, "u1", "r1", timing)
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: first.Epoch, Grace: time.Minute, Revoke: true}), "Detach")
	s.wantClaimErr(b, "u1", "r1", heartbeat.ErrTokenUsed)
	s.open(b, "u1", "j2", timing)
	if cl := s.claim(b, "u1", "j2", "r2"); !cl.Resumed || cl.PrevOwner != "" {
		s.t.Fatalf("claim after a revoke and a new Open: %+v", cl)
	}
}

// staleDetachHandsOverActivity: a detach of a replaced connection (a newer
// epoch holds the session) hands over the last activity that connection
// saw, and nothing else. If it is later than the activity the store has,
// the store keeps it (the idle count starts again from it: no threshold
// reported since) and tells the replica holding the client, if one is
// connected (MessageTouch with the ActivityAge), else nobody; an activity
// that is not later changes nothing and tells nobody. The rest of the
// stale detach (its grace, last frame, idle count, revoke) is ignored: the
// connection that took over keeps the session and its resume nonce.
func staleDetachHandsOverActivity(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	first := s.connect(a, "u1", "r1", timing)
	h := held("u1", first, "r1", timing)
	h.ActivityAge, h.IdleTimes = 6*time.Minute, 1
	s.refresh(a, h) // the store has the activity of 6 min ago, 1 threshold reported
	cl := s.claim(b, "u1", "r1", "r2")
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: first.Epoch})
	stale := func(age time.Duration) {
		s.t.Helper()
		s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: first.Epoch, LastSeenAge: time.Minute, Grace: time.Second,
			ActivityAge: age, IdleTimes: 3, Revoke: true}), fmt.Sprintf("a: stale Detach (activity %v ago)", age))
	}

	// Connected elsewhere, an older activity: nothing changes, nobody is
	// told.
	stale(10 * time.Minute)
	s.quiet(a, b, c)
	cl2 := s.claim(c, "u1", "r2", "r3")
	if !cl2.Resumed || cl2.PrevOwner != b.st.Replica() || cl2.PrevEpoch != cl.Epoch ||
		!s.approx(cl2.ActivityAge, 6*time.Minute) || cl2.IdleTimes != 1 {
		s.t.Fatalf("claim after a stale detach with an older activity: %+v, want b's connection replaced, activity 6 min ago, 1 idle (unchanged)", cl2)
	}
	s.wantMsg(b, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: cl.Epoch})

	// Connected elsewhere, a later activity: kept, and c (holding the
	// client) is told its age.
	stale(2 * time.Minute)
	if m := s.next(c); m.Kind != heartbeat.MessageTouch || m.Session != "u1" || m.ActivityAge != 2*time.Minute {
		s.t.Fatalf("c got %+v after a stale detach with a later activity, want MessageTouch of u1 with ActivityAge 2m0s", m)
	}
	s.quiet(a, b, c)
	cl3 := s.claim(b, "u1", "r3", "r4")
	if !cl3.Resumed || cl3.PrevOwner != c.st.Replica() || cl3.PrevEpoch != cl2.Epoch ||
		!s.approx(cl3.ActivityAge, 2*time.Minute) || cl3.IdleTimes != 0 {
		s.t.Fatalf("claim after a stale detach with a later activity: %+v, want c's connection replaced, activity 2 min ago, no idle", cl3)
	}
	s.wantMsg(c, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: cl2.Epoch})

	// No client connected, an older activity: nothing changes.
	s.must(b.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: cl3.Epoch, Grace: time.Hour, ActivityAge: 11 * time.Minute, IdleTimes: 2}), "b: Detach")
	stale(20 * time.Minute)
	s.quiet(a, b, c)
	cl4 := s.claim(c, "u1", "r4", "r5")
	if !cl4.Resumed || cl4.PrevOwner != "" || !s.approx(cl4.ActivityAge, 11*time.Minute) || cl4.IdleTimes != 2 {
		s.t.Fatalf("claim of a session left with a stale detach with an older activity: %+v, want no previous owner, activity 11 min ago, 2 idle (unchanged)", cl4)
	}

	// No client connected, a later activity: kept, nobody is told.
	s.must(c.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: cl4.Epoch, Grace: time.Hour, ActivityAge: cl4.ActivityAge, IdleTimes: cl4.IdleTimes}), "c: Detach")
	stale(30 * time.Second)
	s.quiet(a, b, c)
	cl5 := s.claim(a, "u1", "r5", "r6")
	if !cl5.Resumed || cl5.PrevOwner != "" || !s.approx(cl5.ActivityAge, 30*time.Second) || cl5.IdleTimes != 0 {
		s.t.Fatalf("claim of a session left with a stale detach with a later activity: %+v, want no previous owner, activity 30 s ago, no idle", cl5)
	}
}

// staleDetachOfAKnownActivity: a stale Detach whose activity the store
// already has (Detach.ActivityKnown) hands nothing over, even when its age
// makes it look later: the same activity measured again, a few
// milliseconds off, must not start the idle count again.
func staleDetachOfAKnownActivity(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	first := s.connect(a, "u1", "r1", timing)
	h := held("u1", first, "r1", timing)
	h.ActivityAge, h.IdleTimes = 6*time.Minute, 1
	s.refresh(a, h)
	cl := s.claim(b, "u1", "r1", "r2")
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: first.Epoch})
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: first.Epoch, Grace: time.Second,
		ActivityAge: 6*time.Minute - 5*time.Millisecond, IdleTimes: 1, ActivityKnown: true}), "a: stale Detach of a known activity")
	s.quiet(a, b)
	cl2 := s.claim(a, "u1", "r2", "r3")
	if cl2.PrevOwner != b.st.Replica() || cl2.PrevEpoch != cl.Epoch || !s.approx(cl2.ActivityAge, 6*time.Minute) || cl2.IdleTimes != 1 {
		s.t.Fatalf("claim after a stale detach of a known activity: %+v, want b's connection replaced, activity 6 min ago, 1 idle (unchanged)", cl2)
	}
}

// refreshStatuses: one status per held connection, in order: OK for the
// current owner, Replaced for a connection another one took over, Gone for
// a session that no longer exists. Without a loss, Rebuilt is false.
func refreshStatuses(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	c1 := s.connect(a, "u1", "r1", timing)
	c2 := s.connect(a, "u2", "r1", timing)
	c3 := s.connect(a, "u3", "r1", timing)
	s.claim(b, "u2", "r1", "r2")
	s.next(a) // the replaced message
	s.must(b.st.End(ctx(), "u3", "done"), "End")
	s.next(a) // the release message
	res := s.refresh(a, held("u1", c1, "r1", timing), held("u2", c2, "r1", timing), held("u3", c3, "r1", timing), held("u1", c1, "r1", timing))
	want := []heartbeat.HeldStatus{heartbeat.HeldOK, heartbeat.HeldReplaced, heartbeat.HeldGone, heartbeat.HeldOK}
	if res.Rebuilt || fmt.Sprint(res.Status) != fmt.Sprint(want) {
		s.t.Fatalf("refresh: %+v, want statuses %v, not rebuilt", res, want)
	}
	if res := s.refresh(b); res.Rebuilt || len(res.Status) != 0 {
		s.t.Fatalf("refresh of nothing: %+v", res)
	}
	// A refresh hands the idle count to the store: the next claim gets it.
	if res := s.refresh(a, heartbeat.Held{Session: "u1", Epoch: c1.Epoch, Resume: "r1", Timing: timing, ActivityAge: 7 * time.Minute, IdleTimes: 1}); res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("refresh: %+v", res)
	}
	if cl := s.claim(b, "u1", "r1", "r2"); !s.approx(cl.ActivityAge, 7*time.Minute) || cl.IdleTimes != 1 {
		s.t.Fatalf("claim after a refresh with activity 7 min ago, 1 idle: %+v", cl)
	}
}

// touchTellsTheOwner: Touch restarts the idle count (the next claim's
// activity age is counted from it) and tells the replica holding the
// client when that is another one; an unknown session is
// ErrUnknownSession.
func touchTellsTheOwner(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	first := s.connect(a, "u1", "r1", timing)
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: first.Epoch, Grace: time.Minute, ActivityAge: 4 * time.Minute, IdleTimes: 0}), "Detach")
	s.must(b.st.Touch(ctx(), "u1"), "Touch while away")
	s.quiet(a, b, c)
	cl := s.claim(b, "u1", "r1", "r2")
	if !s.approx(cl.ActivityAge, 0) || cl.IdleTimes != 0 {
		s.t.Fatalf("claim after a touch: %+v, want activity just now", cl)
	}
	s.must(c.st.Touch(ctx(), "u1"), "Touch")
	s.wantMsg(b, heartbeat.StoreMessage{Kind: heartbeat.MessageTouch, Session: "u1"})
	s.quiet(a, c)
	if err := a.st.Touch(ctx(), "nobody"); !errors.Is(err, heartbeat.ErrUnknownSession) {
		s.t.Fatalf("Touch of an unknown session: %v", err)
	}
}

// noticesKeptWhileAway: a notice for a session with no client connected
// is kept, one per key (a later one replaces it, in its place), 16 keys at
// most (ErrTooManyNotices); the next claim, on any replica, takes them, in
// order of first arrival, and they are not handed out again. An unknown
// session is ErrUnknownSession.
func noticesKeptWhileAway(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	s.open(a, "u1", "j", timing)
	for i := range 16 {
		s.must(b.st.Notify(ctx(), "u1", fmt.Sprint("k", i), fmt.Appendf(nil, "f%d", i)), "Notify")
	}
	s.must(a.st.Notify(ctx(), "u1", "k3", []byte("f3b")), "Notify replacing a kept notice")
	if err := b.st.Notify(ctx(), "u1", "k16", []byte("x")); !errors.Is(err, heartbeat.ErrTooManyNotices) {
		s.t.Fatalf("17th notice: %v, want ErrTooManyNotices", err)
	}
	s.quiet(a, b)
	cl := s.claim(a, "u1", "j", "r1")
	var got []string
	for _, n := range cl.Notices {
		got = append(got, string(n))
	}
	want := "[f0 f1 f2 f3b f4 f5 f6 f7 f8 f9 f10 f11 f12 f13 f14 f15]"
	if fmt.Sprint(got) != want {
		s.t.Fatalf("notices of the join claim: %v, want %s", got, want)
	}
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: cl.Epoch, Grace: time.Minute}), "Detach")
	s.must(a.st.Notify(ctx(), "u1", "k16", []byte("after")), "Notify after the claim took the others")
	cl = s.claim(b, "u1", "r1", "r2")
	if len(cl.Notices) != 1 || string(cl.Notices[0]) != "after" {
		s.t.Fatalf("notices of the resume: %q, want only the one sent since", cl.Notices)
	}
	s.must(b.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: cl.Epoch, Grace: time.Minute}), "Detach")
	if cl := s.claim(a, "u1", "r2", "r3"); len(cl.Notices) != 0 {
		s.t.Fatalf("notices handed out twice: %q", cl.Notices)
	}
	if err := a.st.Notify(ctx(), "nobody", "k", []byte("x")); !errors.Is(err, heartbeat.ErrUnknownSession) {
		s.t.Fatalf("Notify of an unknown session: %v", err)
	}
}

// noticeRoutedToTheOwner: a notice for a connected session goes to the
// replica holding the connection (whichever replica sends it, that one
// too), with the connection's epoch, and to no other; it is not kept.
func noticeRoutedToTheOwner(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	cl := s.connect(b, "u1", "r1", timing)
	s.must(a.st.Notify(ctx(), "u1", "queue", []byte(`{"type":"queue"}`)), "Notify")
	s.wantMsg(b, heartbeat.StoreMessage{Kind: heartbeat.MessageNotice, Session: "u1", Epoch: cl.Epoch, Key: "queue", Frame: []byte(`{"type":"queue"}`)})
	s.must(b.st.Notify(ctx(), "u1", "ready", []byte(`{"type":"ready"}`)), "Notify from the owner")
	s.wantMsg(b, heartbeat.StoreMessage{Kind: heartbeat.MessageNotice, Session: "u1", Epoch: cl.Epoch, Key: "ready", Frame: []byte(`{"type":"ready"}`)})
	s.quiet(a, b, c)
	next := s.claim(c, "u1", "r1", "r2")
	if len(next.Notices) != 0 {
		s.t.Fatalf("routed notices were also kept: %q", next.Notices)
	}
	s.next(b) // replaced
	s.must(a.st.Notify(ctx(), "u1", "queue", []byte("to c")), "Notify")
	s.wantMsg(c, heartbeat.StoreMessage{Kind: heartbeat.MessageNotice, Session: "u1", Epoch: next.Epoch, Key: "queue", Frame: []byte("to c")})
	s.quiet(a, b, c)
}

// noticeForAGoneOwnerIsKept: a notice for a session whose owner replica is
// gone (nobody receives what is routed to it) is kept for the client's
// next connection, not lost.
func noticeForAGoneOwnerIsKept(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	s.connect(b, "u1", "r1", timing)
	s.kill(b)
	s.must(a.st.Notify(ctx(), "u1", "ready", []byte("hello")), "Notify")
	cl := s.claim(a, "u1", "r1", "r2")
	if len(cl.Notices) != 1 || string(cl.Notices[0]) != "hello" {
		s.t.Fatalf("claim after the owner died: notices %q, want the one sent to the dead owner", cl.Notices)
	}
}

// noticeRacingAClaim: a notice for a session whose owner is gone, sent
// while a client claims the session on a live replica, reaches that
// client exactly once: in the claim's notices (the store kept it first)
// or routed to the new owner with the claim's epoch (the claim came
// first). It is never kept once the claim has taken the kept notices,
// where only a later connection would get it. Many sessions race at once,
// so that a store whose Notify decides "route" and "keep" in two steps
// with a claim between them is caught.
func noticeRacingAClaim(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	const n = 200
	first := make([]heartbeat.Claim, n)
	for i := range n {
		first[i] = s.connect(a, fmt.Sprint("u", i), "r1", timing)
	}
	s.kill(a)
	claims := make([]heartbeat.Claim, n)
	notifyErrs, claimErrs := make([]error, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprint("u", i)
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			notifyErrs[i] = c.st.Notify(ctx(), id, "ready", []byte(id))
		})
		wg.Go(func() {
			<-start
			claims[i], claimErrs[i] = b.st.Claim(ctx(), id, "r1", "r2")
		})
		close(start)
	}
	wg.Wait()
	for i := range n {
		s.must(notifyErrs[i], fmt.Sprintf("c: Notify(u%d)", i))
		s.must(claimErrs[i], fmt.Sprintf("b: Claim(u%d)", i))
	}
	routed := map[string]heartbeat.StoreMessage{}
	for _, m := range s.fence(b) {
		if m.Kind != heartbeat.MessageNotice || routed[m.Session].Kind != 0 {
			s.t.Fatalf("b got %+v (routed before: %+v), want one notice per session", m, routed[m.Session])
		}
		routed[m.Session] = m
	}
	s.quiet(c)
	for i, cl := range claims {
		id := fmt.Sprint("u", i)
		m, isRouted := routed[id]
		switch {
		case len(cl.Notices) > 1, len(cl.Notices) == 1 && string(cl.Notices[0]) != id:
			s.t.Fatalf("%s: claim's notices %q, want at most the one sent", id, cl.Notices)
		case len(cl.Notices) == 1 && isRouted:
			s.t.Fatalf("%s: the notice was both in the claim and routed to b (%+v)", id, m)
		case isRouted && (m.Epoch != cl.Epoch || m.Key != "ready" || string(m.Frame) != id):
			s.t.Fatalf("%s: routed %+v, want key ready, frame %s, the claim's epoch %d", id, m, id, cl.Epoch)
		case len(cl.Notices) == 0 && !isRouted:
			// Neither: it was kept after the claim took the kept
			// notices. Show where it went.
			s.must(b.st.Detach(ctx(), id, heartbeat.Detach{Epoch: cl.Epoch, Grace: time.Minute}), "Detach")
			next := s.claim(c, id, "r2", "r3")
			s.t.Fatalf("%s: the notice sent while b claimed the session (epoch %d) reached neither the claim nor b; the next claim got %q", id, cl.Epoch, next.Notices)
		}
		if cl.PrevOwner != a.st.Replica() || cl.PrevEpoch != first[i].Epoch || !cl.PrevGone {
			s.t.Fatalf("%s: claim %+v, want a's dead connection replaced", id, cl)
		}
	}
}

// endRemovesTheSession: End removes the session for good: its nonces stop
// working (ErrUnknownSession), a second End, a Touch and a Notify are
// ErrUnknownSession, the owner's refresh finds it gone. The owner replica,
// if another one, is told (MessageRelease with the reason). A new Open of
// the same id makes a new session, with nothing of the old one.
func endRemovesTheSession(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	cl := s.connect(a, "u1", "r1", timing)
	s.must(b.st.End(ctx(), "u1", "stopped"), "End")
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageRelease, Session: "u1", Reason: "stopped"})
	s.quiet(a, b, c)
	s.wantClaimErr(c, "u1", "r1", heartbeat.ErrUnknownSession)
	if err := b.st.End(ctx(), "u1", "again"); !errors.Is(err, heartbeat.ErrUnknownSession) {
		s.t.Fatalf("second End: %v", err)
	}
	if err := b.st.Touch(ctx(), "u1"); !errors.Is(err, heartbeat.ErrUnknownSession) {
		s.t.Fatalf("Touch after End: %v", err)
	}
	if err := b.st.Notify(ctx(), "u1", "k", []byte("x")); !errors.Is(err, heartbeat.ErrUnknownSession) {
		s.t.Fatalf("Notify after End: %v", err)
	}
	if res := s.refresh(a, held("u1", cl, "r1", timing)); res.Status[0] != heartbeat.HeldGone {
		s.t.Fatalf("refresh of an ended session: %+v", res)
	}
	if err := c.st.End(ctx(), "nobody", "x"); !errors.Is(err, heartbeat.ErrUnknownSession) {
		s.t.Fatalf("End of an unknown session: %v", err)
	}

	// End of a waiting session, and by the owner itself: nobody is told.
	s.open(a, "u2", "j", timing)
	s.must(a.st.Notify(ctx(), "u2", "k", []byte("old")), "Notify")
	s.must(b.st.End(ctx(), "u2", "stopped"), "End of a waiting session")
	s.wantClaimErr(a, "u2", "j", heartbeat.ErrUnknownSession)
	c3 := s.connect(c, "u3", "r1", timing)
	s.must(c.st.End(ctx(), "u3", "stopped"), "End by the owner")
	s.quiet(a, b, c)
	_ = c3

	// The id again: a new session.
	s.open(b, "u2", "j2", timing)
	again := s.claim(a, "u2", "j2", "r1")
	if again.Resumed || len(again.Notices) != 0 {
		s.t.Fatalf("claim of a session opened again after End: %+v, want a connect with no notices", again)
	}
}

// listenStops: after stop, a replica's function receives nothing more.
func listenStops(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	s.connect(a, "u1", "r1", timing)
	a.stop()
	s.must(b.st.Notify(ctx(), "u1", "k", []byte("x")), "Notify")
	s.must(b.st.Touch(ctx(), "u1"), "Touch")
	s.claim(b, "u1", "r1", "r2")
	// The replica listens again (one Listen at a time); once a message
	// routed to it now has arrived, everything routed to it before has
	// been handed to one of its functions: none of it to the stopped one.
	old := a.msgs
	a.msgs = make(chan heartbeat.StoreMessage, 256)
	stop := a.st.Listen(func(m heartbeat.StoreMessage) { a.msgs <- m })
	defer stop()
	s.fence(a)
	select {
	case m := <-old:
		s.t.Fatalf("a message reached a stopped Listen: %+v", m)
	default:
	}
}

// restartedEmpty: a store that lost its data (restarted empty) is found
// out by the next refresh, which reports Rebuilt once and recreates the
// held sessions: their resume nonces work on any replica, the claim
// replacing the refresher's connection. A session nobody holds is gone.
func restartedEmpty(s *suite) {
	if s.be.Wipe == nil {
		s.t.Skip("hbstoretest: skipped: this store cannot lose its data")
	}
	a, b := s.rep("a"), s.rep("b")
	c1 := s.connect(a, "u1", "r1", timing)
	s.open(a, "u2", "j", timing)
	h := held("u1", c1, "r1", timing)
	h.ActivityAge, h.IdleTimes = 6*time.Minute, 1
	if res := s.refresh(a, h); res.Rebuilt || res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("refresh before the loss: %+v", res)
	}
	s.be.Wipe()
	res := s.refresh(a, h)
	if !res.Rebuilt || res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("refresh after the loss: %+v, want rebuilt, OK", res)
	}
	if res := s.refresh(a, h); res.Rebuilt || res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("second refresh after the loss: %+v, want OK, not rebuilt again", res)
	}
	cl := s.claim(b, "u1", "r1", "r2")
	if !cl.Resumed || cl.PrevOwner != a.st.Replica() || cl.PrevEpoch != c1.Epoch || cl.Epoch <= c1.Epoch || cl.Timing != timing ||
		!s.approx(cl.ActivityAge, 6*time.Minute) || cl.IdleTimes != 1 {
		s.t.Fatalf("resume after the rebuild: %+v", cl)
	}
	s.wantClaimErr(b, "u2", "j", heartbeat.ErrUnknownSession)
}

// unreachable: while the store cannot be reached, every method fails with
// a *heartbeat.StoreError naming the call, and changes nothing: once it is
// back, the nonces, owners and notices are as they were.
func unreachable(s *suite) {
	if s.be.Down == nil {
		s.t.Skip("hbstoretest: skipped: this store is never unreachable (it returns no *heartbeat.StoreError)")
	}
	a, b := s.rep("a"), s.rep("b")
	s.open(a, "u1", "j1", timing)
	s.must(a.st.Notify(ctx(), "u1", "k", []byte("kept")), "Notify")
	c2 := s.connect(a, "u2", "r1", timing)
	s.be.Down()
	checks := map[string]error{
		"open":   b.st.Open(ctx(), "u1", "j2", timing),
		"detach": a.st.Detach(ctx(), "u2", heartbeat.Detach{Epoch: c2.Epoch, Grace: time.Second, Revoke: true}),
		"touch":  b.st.Touch(ctx(), "u2"),
		"notify": b.st.Notify(ctx(), "u1", "k2", []byte("lost")),
		"end":    b.st.End(ctx(), "u2", "stopped"),
	}
	_, checks["claim"] = b.st.Claim(ctx(), "u1", "j1", "x")
	_, checks["refresh"] = a.st.Refresh(ctx(), []heartbeat.Held{held("u2", c2, "r1", timing)})
	_, checks["sweep"] = b.st.Sweep(ctx(), 10)
	for op, err := range checks {
		var se *heartbeat.StoreError
		if !errors.As(err, &se) || se.Op != op || se.Err == nil || errors.Unwrap(err) == nil {
			s.t.Errorf("%s with the store unreachable: %v, want a *heartbeat.StoreError for %q with its cause", op, err, op)
		}
	}
	if s.t.Failed() || s.be.Up == nil {
		return
	}
	s.be.Up()
	var cl heartbeat.Claim
	s.retry(func() (err error) {
		cl, err = b.st.Claim(ctx(), "u1", "j1", "r1")
		return err
	})
	if cl.Resumed || len(cl.Notices) != 1 || string(cl.Notices[0]) != "kept" {
		s.t.Fatalf("claim with the first join nonce once the store is back: %+v, want a connect with the notice kept before", cl)
	}
	s.retry(func() error { _, err := a.st.Sweep(ctx(), 1); return err })
	if res := s.refresh(a, held("u2", c2, "r1", timing)); res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("refresh once the store is back: %+v, want u2 still a's", res)
	}
	if cl := s.claim(b, "u2", "r1", "r2"); cl.PrevOwner != a.st.Replica() || cl.PrevEpoch != c2.Epoch {
		s.t.Fatalf("resume of u2 once the store is back: %+v, want a's connection replaced", cl)
	}
}

// openGraceExpires: a session opened and never claimed expires Window
// after Open, on one sweeper (DueExpired at the store's time); an Open of
// a session not connected starts the grace again.
func openGraceExpires(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	t0 := time.Now()
	s.open(a, "u1", "j1", timing)
	s.open(a, "u2", "j1", timing)
	s.advance(40 * time.Second)
	s.open(b, "u2", "j2", timing) // u2's grace starts again
	s.advance(20*time.Second - time.Millisecond)
	s.sweepNothing("before the grace ended", a, b, c)
	s.advance(time.Millisecond)
	got := s.sweep(a, b, c)
	if dues(got) != "expired(u1)" || !got[0].At.Equal(t0.Add(time.Minute)) {
		s.t.Fatalf("at 60 s: %s (%+v), want u1 expired at 60 s", dues(got), got)
	}
	s.wantClaimErr(b, "u1", "j1", heartbeat.ErrUnknownSession)
	s.advance(40 * time.Second)
	if got := s.sweep(a, b, c); dues(got) != "expired(u2)" {
		s.t.Fatalf("at 100 s: %s, want u2 expired", dues(got))
	}
}

// detachGraceFromTheLastFrame: a detached session expires Grace after the
// client's last frame (LastSeenAge before the detach), never before now.
func detachGraceFromTheLastFrame(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	c1 := s.connect(a, "u1", "r", timing)
	c2 := s.connect(a, "u2", "r", timing)
	s.advance(5 * time.Second)
	t1 := time.Now()
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: c1.Epoch, LastSeenAge: 3 * time.Second, Grace: 10 * time.Second}), "Detach")
	s.must(a.st.Detach(ctx(), "u2", heartbeat.Detach{Epoch: c2.Epoch, LastSeenAge: 30 * time.Second, Grace: 10 * time.Second}), "Detach")
	if got := s.sweep(b); dues(got) != "expired(u2)" || !got[0].At.Equal(t1) {
		s.t.Fatalf("at the detach: %s, want u2 expired now (its grace ended before)", dues(got))
	}
	s.advance(7*time.Second - time.Millisecond)
	s.sweepNothing("before u1's grace ended", a, b)
	s.advance(time.Millisecond)
	if got := s.sweep(a, b); dues(got) != "expired(u1)" || !got[0].At.Equal(t1.Add(7*time.Second)) {
		s.t.Fatalf("7 s after the detach: %s, want u1 expired (10 s after its last frame)", dues(got))
	}
	s.wantClaimErr(b, "u1", "r", heartbeat.ErrUnknownSession)
}

// staleDetachChangesNothing: a detach of a replaced connection leaves the
// session to the connection that took over: no grace starts.
func staleDetachChangesNothing(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	first := s.connect(a, "u1", "r1", timing)
	cl := s.claim(b, "u1", "r1", "r2")
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: first.Epoch, Grace: time.Second}), "stale Detach")
	for range 3 {
		s.advance(5 * time.Second)
		s.refresh(b, held("u1", cl, "r2", timing))
		s.sweepNothing("after a stale detach", a, b)
	}
}

// staleDetachMovesTheIdleThreshold: with no client connected, a later
// activity a stale detach hands over moves the session's idle thresholds:
// the count starts again from it, so the next one can come earlier than
// the one due before. An activity not later (the same one, or older) moves
// nothing.
func staleDetachMovesTheIdleThreshold(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	t0 := time.Now()
	tm := heartbeat.Timing{Window: time.Hour, Idle: 5 * time.Minute}
	first := s.connect(a, "u1", "r1", tm)
	cl := s.claim(b, "u1", "r1", "r2")
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: first.Epoch})
	s.advance(6 * time.Minute)
	// b's client leaves at 6 min: its last activity at 0, the threshold at
	// 5 min reported, so the next one is at 10 min.
	s.must(b.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: cl.Epoch, Grace: time.Hour, ActivityAge: 6 * time.Minute, IdleTimes: 1}), "b: Detach")
	stale := func(age time.Duration) {
		s.t.Helper()
		s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: first.Epoch, Grace: time.Second, ActivityAge: age}), fmt.Sprintf("a: stale Detach (activity %v ago)", age))
	}
	stale(6 * time.Minute) // the same activity
	stale(8 * time.Minute) // an older one
	// Had either started the count again, the threshold at 5 min would be
	// due now.
	s.sweepNothing("after stale detaches with no later activity", a, b)
	stale(2 * time.Minute) // at 4 min: the next threshold is at 9 min, not 10
	s.quiet(a, b)
	s.advance(3*time.Minute - time.Millisecond)
	s.sweepNothing("before 5 min after the handed-over activity", a, b)
	s.advance(time.Millisecond)
	if got := s.sweep(a, b); dues(got) != "idle(u1,1)" || !got[0].At.Equal(t0.Add(9*time.Minute)) {
		s.t.Fatalf("at 9 min: %+v, want idle 1 at 9 min (5 min after the activity a's stale detach handed over)", got)
	}
}

// deadlinesFireOnce: the deadlines of sessions whose owner died fire on
// the other replicas, each exactly once however many sweep at the same
// time: lost when the owner lease runs out, then each idle threshold, then
// the grace's end; then nothing.
func deadlinesFireOnce(s *suite) {
	owner, sweepers := s.rep("a"), []*replica{s.rep("b"), s.rep("c"), s.rep("d")}
	const n = 30
	t0 := time.Now()
	tm := heartbeat.Timing{Window: time.Minute, Idle: 40 * time.Second}
	for i := range n {
		s.connect(owner, fmt.Sprint("u", i), "r", tm)
	}
	s.sweepNothing("at once", sweepers...)
	s.advance(5 * time.Second) // the owner dies now; its last refresh was at 0
	s.sweepNothing("at 5 s", sweepers...)
	s.advance(heartbeat.StoreOwnerTTL - 5*time.Second - time.Millisecond)
	s.sweepNothing("before the owner lease ended", sweepers...)
	s.advance(time.Millisecond)
	got := s.sweep(sweepers...)
	if k := kinds(got); k[heartbeat.DueLost] != n || len(k) != 1 || len(got) != n {
		s.t.Fatalf("when the owner lease ended: %s, want %d lost", dues(got), n)
	}
	for _, d := range got {
		if !d.At.Equal(time.Now()) || !d.LastSeen.Equal(t0) || !d.ExpiresAt.Equal(t0.Add(time.Minute)) {
			s.t.Fatalf("lost: %+v, want at now, last seen at the claim, expiring a window after it", d)
		}
	}
	s.advance(30 * time.Second) // 40 s
	got = s.sweep(sweepers...)
	if k := kinds(got); k[heartbeat.DueIdle] != n || len(k) != 1 || len(got) != n {
		s.t.Fatalf("at 40 s: %s, want %d idle", dues(got), n)
	}
	for _, d := range got {
		if d.Times != 1 || !d.At.Equal(t0.Add(40*time.Second)) {
			s.t.Fatalf("idle: %+v, want the first threshold, at 40 s", d)
		}
	}
	s.advance(20 * time.Second) // 60 s: the grace from the last frame
	got = s.sweep(sweepers...)
	if k := kinds(got); k[heartbeat.DueExpired] != n || len(k) != 1 || len(got) != n {
		s.t.Fatalf("at 60 s: %s, want %d expired", dues(got), n)
	}
	seen := map[string]bool{}
	for _, d := range got {
		if seen[d.Session] || !d.At.Equal(time.Now()) {
			s.t.Fatalf("expired: %+v (twice: %v), want each once, at the store's time", d, seen[d.Session])
		}
		seen[d.Session] = true
	}
	s.advance(time.Hour)
	s.sweepNothing("after the sessions ended", sweepers...)
}

func kinds(d []heartbeat.Due) map[heartbeat.DueKind]int {
	m := map[heartbeat.DueKind]int{}
	for _, x := range d {
		m[x.Kind]++
	}
	return m
}

// sweepLimit: one Sweep takes at most limit deadlines; the rest stay due
// for the next.
func sweepLimit(s *suite) {
	a := s.rep("a")
	for i := range 7 {
		s.open(a, fmt.Sprint("u", i), "j", timing)
	}
	s.advance(time.Minute)
	total := 0
	for range 3 {
		d, err := a.st.Sweep(ctx(), 3)
		s.must(err, "Sweep")
		if len(d) > 3 {
			s.t.Fatalf("Sweep(3) took %d: %s", len(d), dues(d))
		}
		total += len(d)
	}
	if total != 7 {
		s.t.Fatalf("three Sweep(3) took %d deadlines, want 7", total)
	}
}

// ownerLeaseRunsOut: refreshes keep a connected session its owner's; when
// they stop, a sweep reports it lost StoreOwnerTTL after the last refresh,
// its grace counted from the last frame that refresh reported. The owner's
// refresh then finds it revived (if it is still there), and the session
// is connected again.
func ownerLeaseRunsOut(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	t0 := time.Now()
	cl := s.connect(a, "u1", "r", timing)
	h := held("u1", cl, "r", timing)
	for range 4 { // 20 s of refreshes every 5 s, the others sweeping
		s.advance(5 * time.Second)
		if res := s.refresh(a, h); res.Status[0] != heartbeat.HeldOK {
			s.t.Fatalf("refresh: %+v", res)
		}
		s.sweepNothing("while the owner refreshes", b)
	}
	h.LastSeenAge = 2 * time.Second
	s.refresh(a, h) // at 20 s: the last frame at 18 s
	for range 3 {
		s.advance(3 * time.Second)
		s.sweepNothing("within the owner lease", b)
	}
	s.advance(heartbeat.StoreOwnerTTL - 9*time.Second)
	got := s.sweep(b)
	last := t0.Add(18 * time.Second)
	if dues(got) != "lost(u1)" || !got[0].At.Equal(time.Now()) || !got[0].LastSeen.Equal(last) || !got[0].ExpiresAt.Equal(last.Add(timing.Window)) {
		s.t.Fatalf("when the owner lease ended: %+v, want u1 lost, last seen at 18 s, expiring at 78 s", got)
	}
	s.advance(10 * time.Second)
	if res := s.refresh(a, h); res.Status[0] != heartbeat.HeldRevived {
		s.t.Fatalf("refresh of a session counted lost: %+v, want revived", res)
	}
	s.advance(time.Minute) // past the grace the loss started: connected again, nothing fires
	s.refresh(a, h)
	s.sweepNothing("after the revival", b)
	if res := s.refresh(a, h); res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("refresh after the revival: %+v", res)
	}
}

// ownersHeldAfterAnOutage: after a gap in the sweeps longer than the owner
// lease (the store was unreachable for everyone), the first sweep gives
// the owners one more lease to refresh before they count as lost.
func ownersHeldAfterAnOutage(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	cl := s.connect(a, "u1", "r", timing)
	s.sweepNothing("at once", b)
	s.advance(2 * time.Minute) // nobody swept for 2 minutes
	s.sweepNothing("the first sweep after the gap", b)
	if res := s.refresh(a, held("u1", cl, "r", timing)); res.Status[0] != heartbeat.HeldOK {
		s.t.Fatalf("refresh after the gap: %+v", res)
	}
	for i := time.Second; i < heartbeat.StoreOwnerTTL; i += time.Second {
		s.advance(time.Second)
		s.sweepNothing("within the refreshed lease", b)
	}
	s.advance(time.Second)
	if got := s.sweep(b); dues(got) != "lost(u1)" {
		s.t.Fatalf("a lease after the last refresh: %s, want u1 lost", dues(got))
	}
}

// idleCountFollowsTheUser: the activity and idle count a detach hands
// back move with the session: a claim elsewhere gets them as an age, the
// thresholds of a session with no client fire at last activity + n ×
// Idle, once each, and a Touch starts the count again.
func idleCountFollowsTheUser(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	t0 := time.Now()
	tm := heartbeat.Timing{Window: time.Hour, Idle: 5 * time.Minute}
	cl := s.connect(a, "u1", "r1", tm)
	s.advance(7 * time.Minute)
	// a reports the last activity 2 min ago (at 5 min), no threshold yet.
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: cl.Epoch, Grace: time.Hour, ActivityAge: 2 * time.Minute}), "Detach")
	s.advance(time.Minute)
	cl = s.claim(b, "u1", "r1", "r2")
	if cl.ActivityAge != 3*time.Minute || cl.IdleTimes != 0 {
		s.t.Fatalf("claim at 8 min: %+v, want activity 3 min ago, no idle", cl)
	}
	s.must(b.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: cl.Epoch, Grace: time.Hour, ActivityAge: 3 * time.Minute}), "Detach")
	s.advance(2*time.Minute - time.Millisecond)
	s.sweepNothing("before the threshold", a, b)
	s.advance(time.Millisecond)
	got := s.sweep(a, b)
	if dues(got) != "idle(u1,1)" || !got[0].At.Equal(t0.Add(10*time.Minute)) {
		s.t.Fatalf("at 10 min: %+v, want idle 1 at 10 min (5 min after the activity)", got)
	}
	s.advance(11 * time.Minute) // 21 min: the thresholds at 15 and 20 min
	got = s.sweep(a, b)
	if dues(got) != "idle(u1,2) idle(u1,3)" {
		s.t.Fatalf("at 21 min: %s, want idle 2 and 3", dues(got))
	}
	for _, d := range got {
		if want := t0.Add(time.Duration(5+5*d.Times) * time.Minute); !d.At.Equal(want) {
			s.t.Fatalf("idle %d at %v, want %v", d.Times, d.At.Sub(t0), want.Sub(t0))
		}
	}
	cl = s.claim(a, "u1", "r2", "r3")
	if cl.ActivityAge != 16*time.Minute || cl.IdleTimes != 3 {
		s.t.Fatalf("claim at 21 min: %+v, want activity 16 min ago, 3 thresholds reported", cl)
	}
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: cl.Epoch, Grace: time.Hour, ActivityAge: cl.ActivityAge, IdleTimes: cl.IdleTimes}), "Detach")
	s.must(b.st.Touch(ctx(), "u1"), "Touch")
	s.advance(5*time.Minute - time.Millisecond)
	s.sweepNothing("within 5 min of the touch", a, b)
	s.advance(time.Millisecond)
	if got := s.sweep(a, b); dues(got) != "idle(u1,1)" || !got[0].At.Equal(t0.Add(26*time.Minute)) {
		s.t.Fatalf("5 min after the touch: %+v, want idle 1 again", got)
	}
}

// connectedIdleIsTheOwnersJob: the idle thresholds of a connected session
// are never swept while its owner refreshes it.
func connectedIdleIsTheOwnersJob(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	tm := heartbeat.Timing{Window: time.Minute, Idle: 10 * time.Second}
	cl := s.connect(a, "u1", "r", tm)
	h := held("u1", cl, "r", tm)
	for i := range 10 {
		s.advance(3 * time.Second)
		h.ActivityAge, h.IdleTimes = time.Duration(i+1)*3*time.Second, (i+1)*3/10
		s.refresh(a, h)
		s.sweepNothing("while connected", a, b)
	}
}

// endedSessionFiresNothing: no deadline of an ended session fires again.
func endedSessionFiresNothing(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	tm := heartbeat.Timing{Window: time.Minute, Idle: 10 * time.Second}
	s.open(a, "u1", "j", tm)
	cl := s.connect(a, "u2", "r", tm)
	c3 := s.connect(a, "u3", "r", tm)
	s.must(a.st.Detach(ctx(), "u3", heartbeat.Detach{Epoch: c3.Epoch, Grace: time.Minute}), "Detach")
	for _, id := range []string{"u1", "u2", "u3"} {
		s.must(b.st.End(ctx(), id, "stopped"), "End")
	}
	s.advance(time.Hour)
	s.sweepNothing("an hour after End", a, b)
	_ = cl
}

// idleReportIsTheStores: an idle threshold the owner reports before firing
// it (ReportIdle) is the store's record: a claim elsewhere gets its count
// and activity; a report by a connection that is not the session's (of
// another replica, another epoch, replaced, or of no session) is refused
// and changes nothing.
func idleReportIsTheStores(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	tm := heartbeat.Timing{Window: time.Hour, Idle: 10 * time.Second}
	cl := s.connect(a, "u1", "r1", tm)
	report := func(r *replica, epoch uint64, age time.Duration, times int, want bool, what string) {
		s.t.Helper()
		ok, err := r.st.ReportIdle(ctx(), "u1", epoch, age, times)
		s.must(err, "ReportIdle "+what)
		if ok != want {
			s.t.Fatalf("ReportIdle %s: %v, want %v", what, ok, want)
		}
	}
	report(a, cl.Epoch, 25*time.Second, 2, true, "by the owner")
	report(b, cl.Epoch, time.Second, 7, false, "by another replica")
	report(a, cl.Epoch+1, time.Second, 7, false, "of another epoch")
	if ok, err := a.st.ReportIdle(ctx(), "nobody", 1, 0, 1); err != nil || ok {
		s.t.Fatalf("ReportIdle of no session: %v, %v; want false, nil", ok, err)
	}
	moved := s.claim(b, "u1", "r1", "r2")
	if moved.IdleTimes != 2 || !s.approx(moved.ActivityAge, 25*time.Second) {
		s.t.Fatalf("claim after the report: idle %d, activity %v ago; want 2 thresholds, 25 s ago", moved.IdleTimes, moved.ActivityAge)
	}
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: cl.Epoch})
	report(a, cl.Epoch, 30*time.Second, 3, false, "by the replaced connection")
	again := s.claim(a, "u1", "r2", "r3")
	if again.IdleTimes != 2 || !s.approx(again.ActivityAge, 25*time.Second) {
		s.t.Fatalf("claim after the refused reports: idle %d, activity %v ago; want them unchanged (2, 25 s ago)", again.IdleTimes, again.ActivityAge)
	}
	s.wantMsg(b, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: moved.Epoch})
	s.quiet(a, b)
}

// idleReportedIsNotSweptAgain: when the owner of a connected session dies
// right after reporting a threshold its last refresh did not carry, the
// sweep that counts it lost does not fire that threshold again; and once a
// sweep has counted the session lost, the owner's report is refused (the
// sweeper fires the thresholds).
func idleReportedIsNotSweptAgain(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	tm := heartbeat.Timing{Window: time.Hour, Idle: 10 * time.Second}
	cl := s.connect(b, "u1", "r1", tm)
	h := held("u1", cl, "r1", tm)
	for i := 1; i <= 5; i++ { // refreshes to 25 s, the last one with 2 thresholds
		s.advance(5 * time.Second)
		h.ActivityAge, h.IdleTimes = time.Duration(i)*5*time.Second, i/2
		s.refresh(b, h)
		s.sweepNothing("while the owner refreshes", a)
	}
	s.advance(6 * time.Second)
	if ok, err := b.st.ReportIdle(ctx(), "u1", cl.Epoch, 31*time.Second, 3); err != nil || !ok {
		s.t.Fatalf("ReportIdle by the owner at 31 s: %v, %v", ok, err)
	}
	var got []heartbeat.Due
	for i := 0; i < 5 && len(got) == 0; i++ { // b is gone: its lease ends at 35 s
		s.advance(time.Second)
		got = s.sweep(a)
	}
	if dues(got) != "lost(u1)" {
		s.t.Fatalf("sweep when the owner's lease ran out: %s, want u1 lost and no idle 3 (reported)", dues(got))
	}
	s.advance(5 * time.Second)
	if got := s.sweep(a); dues(got) != "idle(u1,4)" {
		s.t.Fatalf("sweep at 40 s: %s, want idle 4", dues(got))
	}
	if ok, err := b.st.ReportIdle(ctx(), "u1", cl.Epoch, 40*time.Second, 4); err != nil || ok {
		s.t.Fatalf("ReportIdle of a session the sweep counted lost: %v, %v; want false", ok, err)
	}
}

// toldActivityOutlivesOlderReports: an activity someone else told the
// store (a Touch) stays, with its count, until the owner reports one as
// late: the owner's reports of an earlier activity, made before it heard
// of the Touch (a ReportIdle, a Refresh, its own Detach), do not bring the
// next idle threshold forward. Once the owner reports the told activity
// back, its counts are recorded again.
func toldActivityOutlivesOlderReports(s *suite) {
	a, b, c := s.rep("a"), s.rep("b"), s.rep("c")
	tm := heartbeat.Timing{Window: time.Hour, Idle: 10 * time.Second}
	cl := s.connect(a, "u1", "r1", tm)
	s.must(b.st.Touch(ctx(), "u1"), "Touch on b")
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageTouch, Session: "u1"})
	// a's reports from before the message: its own count, at 11 s.
	if ok, err := a.st.ReportIdle(ctx(), "u1", cl.Epoch, 11*time.Second, 1); err != nil || !ok {
		s.t.Fatalf("ReportIdle by the owner, before it heard of the Touch: %v, %v; want true", ok, err)
	}
	h := held("u1", cl, "r1", tm)
	h.ActivityAge, h.IdleTimes = 11*time.Second, 1
	s.refresh(a, h)
	moved := s.claim(b, "u1", "r1", "r2")
	if moved.IdleTimes != 0 || !s.approx(moved.ActivityAge, 0) {
		s.t.Fatalf("claim after the owner's older reports: idle %d, activity %v ago; want the Touch's (0 thresholds, just now)", moved.IdleTimes, moved.ActivityAge)
	}
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: cl.Epoch})

	// b hears of a Touch, reports it back and then a threshold of it.
	s.must(c.st.Touch(ctx(), "u1"), "Touch on c")
	s.wantMsg(b, heartbeat.StoreMessage{Kind: heartbeat.MessageTouch, Session: "u1"})
	h = held("u1", moved, "r2", tm)
	s.refresh(b, h)
	if ok, err := b.st.ReportIdle(ctx(), "u1", moved.Epoch, 0, 1); err != nil || !ok {
		s.t.Fatalf("ReportIdle of the activity told: %v, %v; want true", ok, err)
	}
	back := s.claim(a, "u1", "r2", "r3")
	if back.IdleTimes != 1 {
		s.t.Fatalf("claim after the owner reported a threshold of the told activity: idle %d, want 1 (recorded)", back.IdleTimes)
	}
	s.wantMsg(b, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: moved.Epoch})

	// a's own Detach of an earlier activity than a Touch it has not heard of.
	s.must(c.st.Touch(ctx(), "u1"), "Touch on c again")
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageTouch, Session: "u1"})
	s.must(a.st.Detach(ctx(), "u1", heartbeat.Detach{Epoch: back.Epoch, Grace: time.Minute, ActivityAge: 25 * time.Second, IdleTimes: 2}), "Detach")
	last := s.claim(b, "u1", "r3", "r4")
	if last.IdleTimes != 0 || !s.approx(last.ActivityAge, 0) {
		s.t.Fatalf("claim after the owner's Detach of an older activity: idle %d, activity %v ago; want the Touch's (0, just now)", last.IdleTimes, last.ActivityAge)
	}
	s.quiet(a, b, c)
}

// toldActivityLapses: a told activity outlives the owner's older reports
// for StoreOwnerTTL only, longer than a report can lag: an owner that
// still reports an older activity after that never got the MessageTouch
// (lost on its way), and its count is the one that goes on.
func toldActivityLapses(s *suite) {
	a, b := s.rep("a"), s.rep("b")
	tm := heartbeat.Timing{Window: time.Hour, Idle: 10 * time.Second}
	cl := s.connect(a, "u1", "r1", tm)
	h := held("u1", cl, "r1", tm)
	s.advance(5 * time.Second)
	s.must(b.st.Touch(ctx(), "u1"), "Touch on b")
	s.next(a) // the MessageTouch a is taken never to have got
	s.advance(heartbeat.StoreOwnerTTL - time.Second)
	h.ActivityAge = 5*time.Second + heartbeat.StoreOwnerTTL - time.Second
	s.refresh(a, h)
	if ok, err := a.st.ReportIdle(ctx(), "u1", cl.Epoch, h.ActivityAge, 1); err != nil || !ok {
		s.t.Fatalf("ReportIdle within the owner lease of the Touch: %v, %v; want true", ok, err)
	}
	s.advance(2 * time.Second) // the Touch is an owner lease and a second old
	h.ActivityAge, h.IdleTimes = h.ActivityAge+2*time.Second, 1
	s.refresh(a, h)
	moved := s.claim(b, "u1", "r1", "r2")
	if moved.IdleTimes != 1 || moved.ActivityAge != h.ActivityAge {
		s.t.Fatalf("claim after the owner's reports outlived the Touch: idle %d, activity %v ago; want the owner's (1, %v ago)", moved.IdleTimes, moved.ActivityAge, h.ActivityAge)
	}
	s.wantMsg(a, heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: "u1", Epoch: cl.Epoch})
	s.quiet(a, b)
}
