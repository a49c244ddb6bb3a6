package car

import (
	"context"
	"errors"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// The queue. Users who found no idle concurrency wait in FIFO order, each
// with a ticket from the lease store, which decides the order and the
// head. This replica keeps its own queued users in a local queue, in the
// order they joined it, for the position notices. One runner goroutine per
// manager works on the head while this replica holds the store's head
// lock: it retries ApplyConcurrent every poll interval, at once after a
// release, and after a transient failure (5xx, throttling, InternalError,
// Stopping…) with backoff, the head keeping its place. It also sends the
// position notices: at most one per user per notice interval, only to
// users whose position changed, the latest position winning, and no more
// than the departures from the queue paid for (noticesPerMove each), front
// of the queue first.

// queueSlot is an entry's part in the queue.
type queueSlot struct {
	ticket    uint64
	inQueue   bool
	queuedAt  time.Time
	sentPos   int       // the last position notice sent
	sentAt    time.Time // when it was sent
	headTries int       // consecutive transient failures as the head
	headErr   error     // the last of them
	headProbe bool      // the head waited for the retry budget: its next try goes uncharged
	notBefore time.Time // the head waits until then after a failure
}

// waitQueue keeps the queued entries in ticket order, with a Fenwick tree
// over the slots so that a position is O(log n) and joining, leaving and
// finding the head are amortised O(1) or O(log n). Slots of users who left
// are nil until compaction.
type waitQueue struct {
	items  []*entry // slot i holds ticket base+i; nil once it left
	base   uint64
	head   int     // no live entry before this slot
	live   int     // entries in the queue
	tree   []int32 // Fenwick tree over the slots, 1-based
	dirty  bool    // positions changed since the last notice round
	credit int     // position notices the queue's changes have paid for
}

func (q *waitQueue) push(e *entry) {
	e.ticket = q.base + uint64(len(q.items))
	e.inQueue = true
	q.items = append(q.items, e)
	q.live++ // a join moves no one: the joiner is told its place at once
	// Appending slot i (1-based) to a Fenwick tree: its node covers
	// (i-lowbit(i), i].
	i := len(q.items)
	q.tree = append(q.tree, int32(1+q.prefix(i-1)-q.prefix(i-(i&-i))))
}

func (q *waitQueue) add(i int, d int32) {
	for i++; i <= len(q.tree); i += i & -i {
		q.tree[i-1] += d
	}
}

// prefix counts the live entries in the first n slots.
func (q *waitQueue) prefix(n int) int {
	s := int32(0)
	for ; n > 0; n -= n & -n {
		s += q.tree[n-1]
	}
	return int(s)
}

func (q *waitQueue) remove(e *entry) {
	i := int(e.ticket - q.base)
	if i < 0 || i >= len(q.items) || q.items[i] != e {
		return
	}
	q.items[i] = nil
	e.inQueue = false
	q.add(i, -1)
	q.live--
	q.credit += noticesPerMove
	q.dirty = true
	for q.head < len(q.items) && q.items[q.head] == nil {
		q.head++
	}
	if q.head > 64 && q.head > len(q.items)/2 {
		q.compact()
	}
}

// compact drops the empty slots before the head and rebuilds the tree.
func (q *waitQueue) compact() {
	n := copy(q.items, q.items[q.head:])
	clear(q.items[n:])
	q.items = q.items[:n]
	q.base += uint64(q.head)
	q.head = 0
	q.tree = q.tree[:0]
	for i := range q.items {
		v := int32(0)
		if q.items[i] != nil {
			v = 1
		}
		j := i + 1
		q.tree = append(q.tree, v+int32(q.prefix(j-1)-q.prefix(j-(j&-j))))
	}
}

// position is e's 1-based place.
func (q *waitQueue) position(e *entry) int { return q.prefix(int(e.ticket-q.base) + 1) }

// each calls f for every queued entry in order, with its position, until f
// returns false.
func (q *waitQueue) each(f func(e *entry, pos int) bool) {
	pos := 0
	for _, e := range q.items[q.head:] {
		if e == nil {
			continue
		}
		pos++
		if !f(e, pos) {
			return
		}
	}
}

// from returns up to n queued entries in order: those after ticket t, or
// from the front when !after.
func (q *waitQueue) from(t uint64, after bool, n int) []*entry {
	i := q.head
	if after && t >= q.base {
		i = max(i, int(t-q.base)+1)
	}
	var out []*entry
	for ; i < len(q.items) && len(out) < n; i++ {
		if e := q.items[i]; e != nil {
			out = append(out, e)
		}
	}
	return out
}

// enqueueLocked puts e at the end of the queue. Caller holds m.mu.
func (m *SessionManager) enqueueLocked(e *entry) {
	e.state = LeaseQueued
	e.queuedAt = time.Now()
	m.queue.push(e)
}

// dequeueLocked takes e out of the queue. Caller holds m.mu.
func (m *SessionManager) dequeueLocked(e *entry) { m.queue.remove(e) }

// kickQueue wakes the runner: a release freed a concurrency, or the queue
// changed.
func (m *SessionManager) kickQueue() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// headBackoff paces the head after a transient failure.
var headBackoff = retry.Exponential(500*time.Millisecond, 10*time.Second)

// errRetryBudgetEmpty is the head's failure while the client's retry
// budget is empty.
var errRetryBudgetEmpty = errors.New("car: the client's retry budget is empty; the queue head waits before trying again")

// chargeHead takes the cost of the head's retry (an attempt after a
// transient failure; a NoIdle answer is no failure) from the client's
// retry budget, as the client's own retries do. When the budget is empty
// the head keeps its place and waits WithReleaseRetryMax (errRetryBudgetEmpty),
// then tries once uncharged, as a probe: while CAR keeps failing, the head
// makes one call per that wait and its backoff.
func (m *SessionManager) chargeHead(e *entry) (int, error) {
	m.mu.Lock()
	tries, probe := e.headTries, e.headProbe
	e.headProbe = false
	m.mu.Unlock()
	if tries == 0 {
		return 0, nil
	}
	if cost, ok := m.client.retryBudget().Spend(false); ok {
		return cost, nil
	}
	if probe {
		return 0, nil
	}
	return 0, errRetryBudgetEmpty
}

// positionNotice is a notice to send once the lock is released.
type positionNotice struct {
	hbID string
	pos  int
}

// runQueue is the queue runner, alive for the manager's life: on the
// replica that holds the head lock it admits the head; every replica keeps
// its own queued users told of their positions. With the manager's private
// store and nobody queued it sleeps until the queue changes.
func (m *SessionManager) runQueue() {
	defer m.queueWG.Done()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.storeTimeout)
		if err := m.store.UnlockHead(ctx); err != nil {
			m.log.Debug("queue: head lock not given up; it runs out", "error", err)
		}
		cancel()
	}()
	for {
		m.mu.Lock()
		closing := m.closing
		m.mu.Unlock()
		if closing || m.runCtx.Err() != nil {
			return
		}
		m.queueTimeouts()
		admitted := m.admitFront()
		m.sweepOrphans()
		next := m.positionRound()
		if admitted {
			continue
		}
		wait := m.cfg.queuePoll
		m.mu.Lock()
		if headAt := m.headAt; !headAt.IsZero() {
			m.headAt = time.Time{}
			if next.IsZero() || headAt.Before(next) {
				next = headAt
			}
		}
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 0))
		}
		idle := m.private && m.queue.live == 0 && next.IsZero()
		m.mu.Unlock()
		var tick <-chan time.Time
		var timer *time.Timer
		if !idle {
			// A fresh timer per wait: Reset on a timer inside a synctest
			// bubble has lost timers in our churn test (see golang/go#76052).
			timer = time.NewTimer(wait)
			tick = timer.C
		}
		select {
		case <-tick:
		case <-m.kick:
		case <-m.runCtx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// queueTimeouts releases this replica's queued users who waited longer
// than WithQueueTimeout.
func (m *SessionManager) queueTimeouts() {
	if m.cfg.queueTimeout <= 0 {
		return
	}
	now := time.Now()
	var out []*entry
	m.mu.Lock()
	// Oldest first: the local queue is in the order of queuedAt.
	m.queue.each(func(e *entry, _ int) bool {
		if now.Sub(e.queuedAt) < m.cfg.queueTimeout {
			return false
		}
		if e.state == LeaseQueued {
			out = append(out, e)
		}
		return true
	})
	m.mu.Unlock()
	for _, e := range out {
		m.release(e, ReleaseQueueTimeout)
	}
}

// admitFront admits the head of the queue if this replica holds the head
// lock. It reports whether the runner should go on at once.
func (m *SessionManager) admitFront() bool {
	ctx, cancel := m.storeCtx(m.runCtx)
	rec, ok, err := m.store.LockHead(ctx, m.headTTL())
	cancel()
	if err != nil {
		m.mu.Lock()
		m.headMine = false
		m.mu.Unlock()
		if !errors.Is(err, ErrHeadLocked) && m.runCtx.Err() == nil {
			m.log.Warn("queue: lease store unreachable; the head waits", "error", err)
		}
		return false
	}
	m.mu.Lock()
	m.headMine = true
	m.mu.Unlock()
	if !ok || rec.Holder != "" && rec.Holder != m.store.Replica() && rec.HoldLeft > 0 {
		return false
	}
	e := m.adoptRecord(rec)
	if e == nil {
		return false
	}
	m.mu.Lock()
	if e.state == LeaseQueued && time.Now().Before(e.notBefore) {
		m.headAt = e.notBefore // the runner wakes for it
	}
	if e.state != LeaseQueued || time.Now().Before(e.notBefore) || m.closing {
		m.mu.Unlock()
		return false
	}
	m.beginStartLocked(e)
	m.mu.Unlock()
	if err := m.renewHold(m.runCtx, e); err != nil {
		m.mu.Lock()
		e.state = LeaseQueued
		pending := e.pending
		e.pending = ""
		m.settleLocked(e)
		m.mu.Unlock()
		switch {
		case errors.Is(err, ErrLeaseGone):
			m.finishRemote(e)
		case pending != "":
			m.release(e, pending)
		}
		return false
	}
	return m.admitHead(e)
}

// admitHead runs ApplyConcurrent and CreateSession for the head (state
// starting). It reports whether the runner should go on at once.
func (m *SessionManager) admitHead(e *entry) bool {
	cost, err := m.chargeHead(e)
	if err == nil {
		err = m.admit(m.runCtx, e, false)
	}
	if err == nil {
		err = m.recordActive(e)
	}
	m.log.Debug("queue head: admission", "user", e.userID, "error", err)
	switch {
	case err == nil:
		if cost > 0 {
			m.client.retryBudget().Succeeded(cost) // what the retry took comes back
		}
		m.mu.Lock()
		m.dequeueLocked(e)
		m.mu.Unlock()
		m.finishStart(e, nil, true)
		// Admission starts the idle count afresh: waiting in the queue is
		// not idleness.
		if err := m.hb.Touch(m.runCtx, e.hbID); err != nil {
			m.log.Debug("idle count not reset", "user", e.userID, "error", err)
		}
		m.sendReady(e)
		return true
	case m.runCtx.Err() != nil || HasCode(err, CodeNoIdle) || !permanentStartError(err):
		m.mu.Lock()
		pending := e.pending
		e.state, e.pending = LeaseQueued, ""
		if HasCode(err, CodeNoIdle) {
			e.headTries = 0
		} else if m.runCtx.Err() == nil {
			e.headTries++
			wait := headBackoff.Delay(e.headTries)
			if err == errRetryBudgetEmpty {
				wait, e.headProbe = m.cfg.releaseRetryMax, true
			} else {
				e.headErr = err
			}
			e.notBefore = time.Now().Add(wait)
			m.headAt = e.notBefore // the runner wakes for the retry, not at the next poll
			m.log.Warn("queue head: start failed; retrying, the user keeps its place",
				"user", e.userID, "attempt", e.headTries, "retry_in", wait, "error", err)
		}
		m.settleLocked(e)
		m.mu.Unlock()
		m.recordQueued(e)
		if pending != "" {
			m.release(e, pending)
			return true
		}
		return false
	default: // a permanent error: the user cannot be admitted
		m.mu.Lock()
		m.dequeueLocked(e)
		m.mu.Unlock()
		m.log.Error("queue head: start failed for good", "user", e.userID, "error", err)
		m.finishStart(e, err, true)
		return true
	}
}

// permanentStartError reports a start failure that waiting cannot cure: a
// refused request or credentials.
func permanentStartError(err error) bool {
	if busyInCAR(err) {
		return false
	}
	return permanentDestroyError(err) && !HasCode(err, CodeSessionNotFound)
}

// noticesPerMove is the position notices each departure from the queue
// (an admission, a user leaving) pays for.
const noticesPerMove = 4

// positionBatch bounds how many queued users a position round looks up in
// the store at once: a round after a departure looks up about as many as
// it may tell, a full round this many at a time.
const positionBatch = 256

// positionRound tells this replica's queued users their positions (the
// store's), coalesced: at most one notice per user per notice interval,
// only to users whose position changed, and no more than the queue's
// departures paid for, spent front of the queue first. A round after an
// admission looks up and tells a few users, not the whole queue: it stops
// at the first user who moved and may not be told yet (the budget is
// spent, or its interval runs). Every poll interval a full round also
// finds those who left the queue elsewhere (admitted by another replica's
// head runner, or released), in case a store event was lost. It returns
// when the first user it had to skip may have its notice (zero if none).
func (m *SessionManager) positionRound() time.Time {
	now := time.Now()
	m.mu.Lock()
	full := !now.Before(m.nextFullRound)
	if full {
		m.nextFullRound = now.Add(m.cfg.queuePoll)
	}
	recheck := m.recheck
	m.recheck = nil
	if !m.queue.dirty && !full {
		m.mu.Unlock()
		m.checkGone(recheck)
		return time.Time{}
	}
	m.queue.dirty = false
	m.queue.credit = min(m.queue.credit, noticesPerMove*(m.queue.live+1))
	budget := m.queue.credit
	m.mu.Unlock()

	var notices []positionNotice
	var next time.Time
	gone := recheck
	after, begun := uint64(0), false
	n := positionBatch // a full round's batches
	if !full {
		n = min(n, budget+1) // and doubling from there, past users who did not move
	}
	for done := false; !done; n = min(2*n, positionBatch) {
		m.mu.Lock()
		batch := m.queue.from(after, begun, n)
		m.mu.Unlock()
		if len(batch) == 0 {
			break
		}
		ids := make([]string, len(batch))
		for i, e := range batch {
			ids[i] = e.userID
		}
		ctx, cancel := m.storeCtx(m.runCtx)
		pos, err := m.store.Positions(ctx, ids)
		cancel()
		m.mu.Lock()
		if err != nil || len(pos) != len(ids) {
			m.queue.dirty = true // try again at the next round
			m.mu.Unlock()
			break
		}
		for i, e := range batch {
			after, begun = e.ticket, true
			switch {
			case e.state != LeaseQueued || e.done || !e.inQueue:
			case pos[i] == 0:
				gone = append(gone, e)
			case pos[i] == e.sentPos:
			case len(notices) >= budget:
				m.queue.dirty = true // the next departures pay for it
				done = done || !full
			case now.Before(e.sentAt.Add(m.cfg.noticeInterval)):
				// Its turn comes later, and those behind it wait for it:
				// front of the queue first, and no round scans the queue.
				m.queue.dirty = true
				done = done || !full
				if at := e.sentAt.Add(m.cfg.noticeInterval); next.IsZero() || at.Before(next) {
					next = at
				}
			default:
				e.sentPos, e.sentAt = pos[i], now
				notices = append(notices, positionNotice{e.hbID, pos[i]})
			}
			if done {
				break
			}
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.queue.credit -= len(notices)
	m.mu.Unlock()
	for _, n := range notices {
		m.notify(n.hbID, heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: n.pos})
	}
	m.checkGone(gone)
	return next
}

// checkGone asks the store about queued users who seem to have left the
// queue elsewhere: a user admitted by another replica leaves this
// replica's books with its Wait answered; one released elsewhere is
// forgotten.
func (m *SessionManager) checkGone(gone []*entry) {
	moved := false
	defer func() {
		if moved { // the queue changed: tell those behind at once, not at the next poll
			m.kickQueue()
		}
	}()
	for _, e := range gone {
		m.mu.Lock()
		skip := e.state != LeaseQueued || e.done
		m.mu.Unlock()
		if skip {
			continue
		}
		ctx, cancel := m.storeCtx(m.runCtx)
		rec, found, err := m.store.Get(ctx, e.userID)
		cancel()
		switch {
		case err != nil:
		case !found || rec.Generation != e.gen:
			m.finishRemote(e)
		case rec.State == LeaseActive:
			// The client's connection may be here: then the entry stays,
			// active, as onConnect would have adopted it, so that this
			// replica keeps reporting (Snapshot) and handling the user it
			// serves. Otherwise the admitting replica has it now.
			info, _ := m.hb.Session(e.hbID)
			m.mu.Lock()
			if e.state == LeaseQueued && !e.done {
				moved = true
				e.admitSession, e.serverSession = rec.ServerSession, rec.ServerSession
				e.state, e.wasAdmitted = LeaseActive, true
				close(e.admitted)
				if info.Connected {
					m.dequeueLocked(e)
					e.since, e.applied = time.Now(), rec.Applied
				} else {
					m.forgetLocked(e)
					m.stats.forgotten--
				}
			}
			m.mu.Unlock()
		}
	}
}
