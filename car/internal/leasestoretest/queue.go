package leasestoretest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// The queue's wake-ups across replicas: a release anywhere moves the queue
// at once, and every queued user hears its new place from the replica it
// queued through. The cases run the managers with a queue poll of a
// minute and a CAR that cleans up at once, and look at the bubble's clock
// without letting it move: what happens must happen on the store's
// events, since no poll could have come yet.

// slowPoll is the queue poll interval of the wake-up cases: far longer
// than any case waits for a step.
const slowPoll = time.Minute

// roles picks, in a fleet of three, the replica whose runner holds the
// head lock and the two others, once every runner has tried the lock.
func (f *fleet) roles() (head, a, b *Replica) {
	f.T.Helper()
	synctest.Wait()
	head = f.headHolder()
	if head == nil {
		f.T.Fatal("no replica holds the head lock")
	}
	var others []*Replica
	for _, r := range f.Reps {
		if r != head {
			others = append(others, r)
		}
	}
	return head, others[0], others[1]
}

// admissions records when each queued lease's Wait returned.
type admissions struct {
	mu    sync.Mutex
	order []string
	at    map[string]time.Time
	errs  map[string]error
}

func (a *admissions) wait(t *testing.T, user string, l *car.Lease) {
	go func() {
		_, err := l.Wait(t.Context())
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			a.errs[user] = err
			return
		}
		a.order = append(a.order, user)
		a.at[user] = time.Now()
	}()
}

func (a *admissions) get() ([]string, map[string]time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.order), a.at
}

// releaseWakesQueueAtOnce: users queued through replica B are admitted,
// one release at a time, the instant a release through replica A is done,
// by the runner of the third replica, which holds the head lock: A's
// store event wakes it. The bubble's clock does not move between the
// release and the admission, and the poll is a minute away. With CAR
// failing the head's ApplyConcurrent (a 503), the head keeps its place
// and is admitted after its backoff, the next release again at once; the
// queue is admitted in order, and nothing leaks.
func releaseWakesQueueAtOnce(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleetWith(t, newBackend, 3, 1, fleetConfig{poll: slowPoll})
	head, a, b := f.roles()
	f.Start(a, "holder")
	adm := &admissions{at: map[string]time.Time{}, errs: map[string]error{}}
	const n = 4
	for i := range n {
		user := fmt.Sprintf("q%d", i+1)
		l := f.Start(b, user)
		if l.QueuePosition != i+1 {
			t.Fatalf("%s through %s: position %d, want %d", user, b.Name, l.QueuePosition, i+1)
		}
		adm.wait(t, user, l)
	}
	synctest.Wait()
	current := "holder"
	for i := range n {
		user := fmt.Sprintf("q%d", i+1)
		fault := i == 1
		if fault {
			if err := f.CAR.InjectFault("ApplyConcurrent", cartest.Fault{Code: "InternalError", HTTPStatus: 503, Times: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Mgr.Stop(t.Context(), current); err != nil {
			t.Fatalf("%s: Stop(%s): %v", a.Name, current, err)
		}
		released := time.Now()
		synctest.Wait() // the clock stands still
		order, at := adm.get()
		if fault {
			if len(order) != i {
				t.Fatalf("%s admitted %v although CAR failed its ApplyConcurrent", user, order)
			}
			// The head's backoff after one failure is at most a second.
			time.Sleep(time.Second)
			synctest.Wait()
			order, at = adm.get()
			if len(order) != i+1 || order[i] != user {
				t.Fatalf("a second after %s's failed admission: admitted %v, want %s next (it keeps its place; the poll is %v away)", user, order, user, slowPoll)
			}
			t.Logf("%s admitted %v after its 503", user, at[user].Sub(released))
		} else if len(order) != i+1 || order[i] != user || !at[user].Equal(released) {
			t.Fatalf("release of %s through %s: admitted %v (%s at %v), want %s at once (the poll is %v away; %s holds the head lock)",
				current, a.Name, order, user, at[user], user, slowPoll, head.Name)
		}
		current = user
	}
	adm.mu.Lock()
	if len(adm.errs) != 0 {
		t.Errorf("Waits failed: %v", adm.errs)
	}
	adm.mu.Unlock()
	if h := f.headHolder(); h != head {
		t.Errorf("the head lock moved from %s to %v: the premise (a runner elsewhere admits) is gone", head.Name, h)
	}
	f.noLeaks()
}

// kill kills r without Shutdown: its stores and CAR fail every call and
// it hears nothing more. (Its clients' networks cut their connections.)
func (f *fleet) kill(r *Replica) {
	r.Store.Dead.Store(true)
	r.Tr.Dead.Store(true)
	if ks := f.sess[r.Name]; ks != nil {
		ks.Kill()
	}
}

// client is one user's browser: its heartbeat client, on a network of
// its own in front of the replicas, and what it heard.
type client struct {
	net *Router
	mu  sync.Mutex
	pos []int // the queue positions, in order
	rdy int   // ready notices
}

func (c *client) heard() (pos []int, ready int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pos), c.rdy
}

// connect opens l's heartbeat session through r, on a network of its own
// from rt, and records its notices.
func (f *fleet) connect(rt *Router, r *Replica, l *car.Lease) *client {
	f.T.Helper()
	c := &client{net: rt.Another(r.Name)}
	hc, err := hbclient.Connect(f.T.Context(), "ws://heartbeat/", l.HeartbeatSession, l.HeartbeatToken,
		hbclient.WithDialer(&websocket.Dialer{NetDialContext: c.net.Dial}),
		hbclient.OnNotice(func(n heartbeat.Notice) {
			c.mu.Lock()
			defer c.mu.Unlock()
			switch n.Kind {
			case heartbeat.NoticeQueue:
				c.pos = append(c.pos, n.Position)
			case heartbeat.NoticeReady:
				c.rdy++
			}
		}))
	if err != nil {
		f.T.Fatalf("connect %s through %s: %v", l.HeartbeatSession, r.Name, err)
	}
	f.T.Cleanup(func() { hc.Close() })
	return c
}

// checkPlaces checks, one notice interval on, that each client of users
// (queued in that order, the first admitted ones first) heard its place
// in the queue as its last notice, or, for the admitted, one ready
// notice; and that the places it heard never went up.
func (f *fleet) checkPlaces(step string, users []string, clients map[string]*client, admitted int, gone map[string]bool) {
	f.T.Helper()
	time.Sleep(car.DefaultNoticeInterval)
	synctest.Wait()
	place := 0
	for i, u := range users {
		c := clients[u]
		if gone[u] || c == nil {
			continue
		}
		pos, rdy := c.heard()
		if i >= admitted {
			place++
		}
		switch {
		case i < admitted && rdy != 1:
			f.T.Errorf("%s: %s heard %d ready notices, want 1 (positions %v)", step, u, rdy, pos)
		case i >= admitted && (rdy != 0 || len(pos) == 0 || pos[len(pos)-1] != place):
			f.T.Errorf("%s: %s heard positions %v (and %d ready), want the last to be %d", step, u, pos, rdy, place)
		}
		for j := 1; j < len(pos); j++ {
			// A place may be told again (a new connection, a new replica
			// telling it), never a later one.
			if pos[j] > pos[j-1] {
				f.T.Errorf("%s: %s heard positions %v: they must never go up", step, u, pos)
				break
			}
		}
	}
}

// positionsPushedAcrossReplicas: users queued through replica B, their
// clients connected to B, hear every new place of theirs as the queue
// moves, whichever replica releases (each in turn) and whichever admits
// (the holder of the head lock, which tells an admitted user's client
// through the shared session store): within one notice interval of each
// admission, each client's last notice is its place, its places never
// went up, and an admitted user heard one ready notice. A 503 on the head's
// ApplyConcurrent moves nobody.
func positionsPushedAcrossReplicas(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleetWith(t, newBackend, 3, 1, fleetConfig{poll: slowPoll, sessions: true})
	head, a, b := f.roles()
	rt := f.Router(b.Name)
	f.Start(a, "holder")
	const n = 5
	users := make([]string, n)
	clients := map[string]*client{}
	for i := range n {
		users[i] = fmt.Sprintf("q%d", i+1)
		clients[users[i]] = f.connect(rt, b, f.Start(b, users[i]))
	}
	f.checkPlaces("queued", users, clients, 0, nil)
	releasers := []*Replica{a, head, b}
	current := "holder"
	for k := range n {
		fault := k == 2
		if fault {
			if err := f.CAR.InjectFault("ApplyConcurrent", cartest.Fault{Code: "InternalError", HTTPStatus: 503, Times: 1}); err != nil {
				t.Fatal(err)
			}
		}
		r := releasers[k%len(releasers)]
		if err := r.Mgr.Stop(t.Context(), current); err != nil {
			t.Fatalf("%s: Stop(%s): %v", r.Name, current, err)
		}
		if fault {
			synctest.Wait()
			if pos, rdy := clients[users[k]].heard(); rdy != 0 {
				t.Fatalf("%s heard ready although CAR failed its ApplyConcurrent (positions %v)", users[k], pos)
			}
		}
		current = users[k]
		f.checkPlaces(fmt.Sprintf("release %d through %s", k+1, r.Name), users, clients, k+1, nil)
	}
	var sent []string
	for _, r := range f.Reps {
		sent = append(sent, fmt.Sprintf("%s %d", r.Name, r.Mgr.Snapshot().NoticesSent))
	}
	t.Logf("notices sent by replica: %v (head lock: %s, queued through %s)", sent, head.Name, b.Name)
	f.noLeaks()
}

// queuedUserGoneLeavesQueue: the replica that holds the head lock is
// killed (no Shutdown) with two users queued through it, their clients
// connected to it. One client never comes back: once the reconnect
// window has passed (not before), a live replica releases that user,
// once, and it leaves the queue; the users behind move up and hear it.
// The other client resumes through another replica and keeps its place.
// Then the queue is admitted in order (0 inversions), by the replica that
// took the head lock over, a 503 on one ApplyConcurrent on the way; no
// concurrency leaks, nothing is left in the store.
func queuedUserGoneLeavesQueue(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleetWith(t, newBackend, 3, 1, fleetConfig{poll: pollInterval, sessions: true})
	victim, a, c := f.roles()
	rt := f.Router(a.Name)
	f.connect(rt, a, f.Start(a, "holder")) // playing, on a live replica
	users := []string{"q1", "q2", "q3", "q4"}
	through := map[string]*Replica{"q1": victim, "q2": a, "q3": victim, "q4": c}
	clients := map[string]*client{}
	leases := map[string]*car.Lease{}
	for _, u := range users {
		leases[u] = f.Start(through[u], u)
		clients[u] = f.connect(rt, through[u], leases[u])
	}
	adm := &admissions{at: map[string]time.Time{}, errs: map[string]error{}}
	for _, u := range []string{"q2", "q4"} { // Waits on live replicas
		adm.wait(t, u, leases[u])
	}
	f.checkPlaces("queued", users, clients, 0, nil)

	f.kill(victim)
	killed := time.Now()
	clients["q1"].net.Move(victim.Name, true) // gone for good
	clients["q3"].net.Move(c.Name, false)     // resumes through c
	window := car.DefaultReconnectWait
	time.Sleep(window - 15*time.Second) // the last frame was at most a ping interval before the kill
	synctest.Wait()
	if rel := f.Released(); len(rel) != 0 {
		t.Fatalf("released before the reconnect window passed: %v", rel)
	}
	if pos, err := f.audit.Positions(t.Context(), users); err != nil || fmt.Sprint(pos) != "[1 2 3 4]" {
		t.Fatalf("places %v (%v) before the reconnect window passed, want [1 2 3 4]", pos, err)
	}
	time.Sleep(30 * time.Second)
	synctest.Wait()
	// The reason is "left queue" from a replica that had q1 queued on its
	// books (the one that took the head lock over may have), and
	// "disconnected" from one that adopted the expired session blind.
	rel := f.Released()
	if len(rel) != 1 || strings.HasPrefix(rel[0], victim.Name+" ") ||
		!strings.HasSuffix(rel[0], " q1 "+string(car.ReleaseDisconnected)) && !strings.HasSuffix(rel[0], " q1 "+string(car.ReleaseLeftQueue)) {
		t.Fatalf("releases %v, want q1 released once (disconnected or left queue), by a live replica", rel)
	}
	t.Logf("%s (%v after its replica %s was killed)", rel[0], time.Since(killed), victim.Name)
	if pos, err := f.audit.Positions(t.Context(), users); err != nil || fmt.Sprint(pos) != "[0 1 2 3]" {
		t.Fatalf("places %v (%v) after q1 left, want [0 1 2 3]", pos, err)
	}
	gone := map[string]bool{"q1": true}
	f.checkPlaces("q1 left", users, clients, 0, gone)
	if n := f.Count(cartest.EventLocked, "q1"); n != 0 {
		t.Errorf("q1 got a concurrency %d times", n)
	}

	// The queue moves on: releases through the live replicas, in turn.
	if err := f.CAR.InjectFault("ApplyConcurrent", cartest.Fault{Code: "InternalError", HTTPStatus: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	live := []*Replica{a, c}
	current := "holder"
	for k, u := range users[1:] {
		r := live[k%2]
		if err := r.Mgr.Stop(t.Context(), current); err != nil {
			t.Fatalf("%s: Stop(%s): %v", r.Name, current, err)
		}
		f.checkPlaces(fmt.Sprintf("release of %s through %s", current, r.Name), users[1:], clients, k+1, nil)
		current = u
	}
	var order []string
	for _, e := range f.CAR.Events() {
		if e.Kind == cartest.EventLocked && strings.HasPrefix(e.Subject, "q") {
			order = append(order, e.Subject)
		}
	}
	if fmt.Sprint(order) != "[q2 q3 q4]" {
		t.Errorf("admission order in CAR %v, want [q2 q3 q4] (0 inversions)", order)
	}
	adm.mu.Lock()
	if len(adm.errs) != 0 || len(adm.order) != 2 {
		t.Errorf("Waits: admitted %v, failed %v", adm.order, adm.errs)
	}
	adm.mu.Unlock()
	if rel := f.Released(); len(rel) != 4 {
		t.Errorf("releases %v, want q1's and the three Stops'", rel)
	}
	f.noLeaks()
}
