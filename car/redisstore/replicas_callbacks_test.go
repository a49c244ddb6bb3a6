package redisstore_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// The churn's check that the heartbeat callbacks the managers act on
// (OnIdle, OnExpire, OnDisconnect) fire at most once per occurrence,
// across the replicas. The managers keep those callbacks for themselves
// (WithHeartbeat refuses them), so the test watches where they come from:
// in a shared store a replica fires them for what the store hands it.
// watchedSessions wraps each replica's heartbeat.Store and books
//
//   - OnIdle and OnExpire: every deadline a Sweep hands out (DueIdle,
//     DueExpired), each of which the sweeping replica fires once; and
//     the OnIdle a session's holder fires itself, for a connected client,
//     which sends it an idle notice with the count: the test's client
//     books the notices it receives (a notice lost with its connection
//     hides a callback; none is invented). A holder fires it once the
//     store took the threshold as its own (ReportIdle), or when the store
//     could not be reached, which the test books as unrecorded;
//   - OnDisconnect: the end of a connection of a session (a successful
//     Claim with its epoch). It is reported by the replica holding it
//     (its Detach with a grace, the detach of OnDisconnect; a connection
//     replaced while its replica lives is closed there, guarded by that
//     replica's own books, and is not booked), by the replica a later
//     Claim lands on when the holder is gone (Claim.PrevGone, for
//     PrevEpoch), or by a replica whose Sweep reports the session lost
//     (DueLost: the holder stopped refreshing; for the last connection
//     claimed before that Sweep began).
//
// A killed replica's calls after its kill are not booked: its process is
// gone, and so are its callbacks (the test's dropped manager still runs
// them, reaching nothing).
//
// An occurrence is then:
//
//   - OnIdle: a session's idle count n since its last activity. The
//     churn's activity is its Touches; an idle count is keyed by the
//     session, the Touches made on it when the deadline was handed out,
//     and n. (A Touch booked before its frame reaches the store can put
//     the last thresholds of the old count under the new key; no churn
//     user goes a threshold without activity after a Touch, so the new
//     count never reaches them.)
//   - OnExpire: a session (it no longer exists after).
//   - OnDisconnect: a connection, (session, epoch). A holder's Detach that
//     failed (the store unreachable) leaves the store to report the
//     connection lost as well: by design, the owner lease runs out
//     instead (heartbeat.Server's storeDetachLocked), so a DueLost after
//     a failed Detach is allowed and counted apart.
type callbackBook struct {
	seq atomic.Int64 // orders the calls of every replica

	mu      sync.Mutex
	touches map[string]int         // Touches the test made, by session
	claims  map[string][]claimAt   // successful Claims, by session
	idle    map[idleKey][]idleFire // who fired each idle count
	// unrecorded has the idle counts a holder's ReportIdle failed for: it
	// fires them all the same, and they may fire again elsewhere.
	unrecorded map[idleKey]bool
	expired    map[string][]string               // who was handed each expiry
	disc       map[connKey][]string              // who reported each connection's end
	failed     map[connKey]bool                  // a holder's Detach failed
	counts     struct{ idle, expired, disc int } // handed out / reported
}

type idleKey struct {
	session        string
	touches, times int
}

type idleFire struct {
	replica, how string
	seq          int64
}

type connKey struct {
	session string
	epoch   uint64
}

type claimAt struct {
	epoch      uint64
	begin, end int64 // seq when the Claim began and returned
}

func newCallbackBook() *callbackBook {
	return &callbackBook{
		touches: map[string]int{}, claims: map[string][]claimAt{}, idle: map[idleKey][]idleFire{}, unrecorded: map[idleKey]bool{},
		expired: map[string][]string{}, disc: map[connKey][]string{}, failed: map[connKey]bool{},
	}
}

// idleNotice books an idle notice the client of session received from
// replica: its holder fired OnIdle for that count.
func (cb *callbackBook) idleNotice(session string, times int, replica string) {
	seq := cb.seq.Add(1)
	cb.mu.Lock()
	defer cb.mu.Unlock()
	k := idleKey{session, cb.touches[session], times}
	cb.idle[k] = append(cb.idle[k], idleFire{replica: replica, how: "idle notice", seq: seq})
	cb.counts.idle++
}

func (cb *callbackBook) touched(session string) {
	cb.mu.Lock()
	cb.touches[session]++
	cb.mu.Unlock()
}

// watchedSessions is a replica's heartbeat.Store that books what its
// Server fires callbacks for.
type watchedSessions struct {
	heartbeat.Store
	cb     *callbackBook
	id     string
	killed *atomic.Bool
}

func (w *watchedSessions) Claim(ctx context.Context, id, used, resume string) (heartbeat.Claim, error) {
	begin := w.cb.seq.Add(1)
	cl, err := w.Store.Claim(ctx, id, used, resume)
	end := w.cb.seq.Add(1)
	if err != nil || w.killed.Load() {
		return cl, err
	}
	w.cb.mu.Lock()
	defer w.cb.mu.Unlock()
	w.cb.claims[id] = append(w.cb.claims[id], claimAt{epoch: cl.Epoch, begin: begin, end: end})
	if cl.PrevOwner != "" && cl.PrevGone {
		k := connKey{id, cl.PrevEpoch}
		w.cb.disc[k] = append(w.cb.disc[k], fmt.Sprintf("%s (replaced, %s gone)", w.id, cl.PrevOwner))
		w.cb.counts.disc++
	}
	return cl, nil
}

func (w *watchedSessions) Detach(ctx context.Context, id string, d heartbeat.Detach) error {
	killed := w.killed.Load()
	err := w.Store.Detach(ctx, id, d)
	// A Detach without a grace hands over a replaced connection's last
	// activity; one with a grace follows the holder's OnDisconnect (or
	// gives back a Claim whose connection left before its welcome, which
	// fired nothing: booked as an end all the same, it can only make a
	// second report look like a duplicate, never hide one).
	if d.Grace <= 0 || killed {
		return err
	}
	k := connKey{id, d.Epoch}
	w.cb.mu.Lock()
	defer w.cb.mu.Unlock()
	how := w.id + " (detach)"
	if err != nil {
		how = w.id + " (detach failed)"
		w.cb.failed[k] = true
	}
	w.cb.disc[k] = append(w.cb.disc[k], how)
	w.cb.counts.disc++
	return err
}

func (w *watchedSessions) ReportIdle(ctx context.Context, id string, epoch uint64, activityAge time.Duration, times int) (bool, error) {
	ok, err := w.Store.ReportIdle(ctx, id, epoch, activityAge, times)
	if err != nil && !w.killed.Load() {
		w.cb.mu.Lock()
		w.cb.unrecorded[idleKey{id, w.cb.touches[id], times}] = true
		w.cb.mu.Unlock()
	}
	return ok, err
}

func (w *watchedSessions) Sweep(ctx context.Context, limit int) ([]heartbeat.Due, error) {
	begin := w.cb.seq.Add(1)
	due, err := w.Store.Sweep(ctx, limit)
	if err != nil || w.killed.Load() {
		return due, err
	}
	w.cb.mu.Lock()
	defer w.cb.mu.Unlock()
	for _, d := range due {
		switch d.Kind {
		case heartbeat.DueIdle:
			k := idleKey{d.Session, w.cb.touches[d.Session], d.Times}
			w.cb.idle[k] = append(w.cb.idle[k], idleFire{replica: w.id, how: "swept", seq: begin})
			w.cb.counts.idle++
		case heartbeat.DueExpired:
			w.cb.expired[d.Session] = append(w.cb.expired[d.Session], w.id)
			w.cb.counts.expired++
		case heartbeat.DueLost:
			// The connection lost is the last one claimed before this
			// Sweep began (a Claim still under way is of a newer one).
			var epoch uint64
			for _, c := range w.cb.claims[d.Session] {
				if c.end < begin && c.epoch > epoch {
					epoch = c.epoch
				}
			}
			k := connKey{d.Session, epoch}
			w.cb.disc[k] = append(w.cb.disc[k], w.id+" (lost)")
			w.cb.counts.disc++
		}
	}
	return due, nil
}

// check reports every occurrence booked more than once, but for an idle
// count fired again after its holder fired it without the store's record
// (heartbeat's at least once while the store is unreachable), which it
// counts apart; it returns the counts to print.
func (cb *callbackBook) check(t *testing.T) string {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	idleTwice, idleAgain, expiredTwice, discTwice, lostAfterFailed := 0, 0, 0, 0, 0
	for _, k := range sortedKeys(cb.idle, func(k idleKey) string { return fmt.Sprintf("%s %09d %09d", k.session, k.touches, k.times) }) {
		fires := cb.idle[k]
		if len(fires) < 2 {
			continue
		}
		sort.Slice(fires, func(i, j int) bool { return fires[i].seq < fires[j].seq })
		var by []string
		for _, f := range fires {
			by = append(by, fmt.Sprintf("%s (%s)", f.replica, f.how))
		}
		if cb.unrecorded[k] {
			idleAgain++
			continue
		}
		idleTwice++
		t.Errorf("OnIdle for %s, idle count %d after %d Touches, fired %d times (by %s)", k.session, k.times, k.touches, len(fires), strings.Join(by, ", "))
	}
	for _, s := range sortedKeys(cb.expired, func(s string) string { return s }) {
		if by := cb.expired[s]; len(by) > 1 {
			expiredTwice++
			t.Errorf("OnExpire for %s handed out %d times (to %s)", s, len(by), strings.Join(by, ", "))
		}
	}
	for _, k := range sortedKeys(cb.disc, func(k connKey) string { return fmt.Sprintf("%s %020d", k.session, k.epoch) }) {
		by := cb.disc[k]
		if len(by) == 2 && cb.failed[k] && strings.HasSuffix(by[0], "(detach failed)") && strings.HasSuffix(by[1], "(lost)") {
			lostAfterFailed++
			continue
		}
		if len(by) > 1 {
			discTwice++
			t.Errorf("OnDisconnect for %s, connection %d, reported %d times (by %s)", k.session, k.epoch, len(by), strings.Join(by, ", "))
		}
	}
	return fmt.Sprintf("OnIdle fired %d (the same idle count twice: %d; again after its holder fired it unrecorded, the store unreachable: %d), OnExpire %d (twice: %d), "+
		"connection ends reported %d (twice: %d; lost after a failed detach: %d)",
		cb.counts.idle, idleTwice, idleAgain, cb.counts.expired, expiredTwice, cb.counts.disc, discTwice, lostAfterFailed)
}

func sortedKeys[K comparable, V any](m map[K]V, key func(K) string) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return key(ks[i]) < key(ks[j]) })
	return ks
}
