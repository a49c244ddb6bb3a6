package car

import (
	"errors"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// The queue. Users who found no idle concurrency wait in FIFO order, each
// with a ticket. One runner goroutine, alive while the queue is not empty,
// works on the head: it retries ApplyConcurrent every poll interval, at
// once after a release, and after a transient failure (5xx, throttling,
// InternalError, Stopping…) with backoff, the head keeping its place. It
// also sends the position notices: at most one per user per notice
// interval, only to users whose position changed, the latest position
// winning.

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

func (q *waitQueue) front() *entry {
	if q.head < len(q.items) {
		return q.items[q.head]
	}
	return nil
}

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
	if m.store == nil && !m.running && !m.closing {
		m.running = true
		m.queueWG.Add(1)
		go m.runQueue()
	}
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

// runQueue admits queued users in order and keeps them told of their
// positions.
func (m *SessionManager) runQueue() {
	defer m.queueWG.Done()
	for {
		now := time.Now()
		m.mu.Lock()
		if m.closing || m.queue.live == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		// Users who waited too long leave, oldest first (the queue is in
		// order of arrival).
		var timedOut []*entry
		if m.cfg.queueTimeout > 0 {
			m.queue.each(func(e *entry, _ int) bool {
				if now.Sub(e.queuedAt) < m.cfg.queueTimeout {
					return false
				}
				timedOut = append(timedOut, e)
				return true
			})
		}
		var head *entry
		wait := m.cfg.queuePoll
		if e := m.queue.front(); e != nil && len(timedOut) == 0 {
			if d := e.notBefore.Sub(now); d > 0 {
				wait = d
			} else {
				head = e
				m.beginStartLocked(e)
			}
		}
		var notices []positionNotice
		if m.queue.dirty {
			var next time.Time
			notices, next = m.positionRoundLocked(now)
			if !next.IsZero() {
				wait = min(wait, next.Sub(now))
			}
		}
		m.mu.Unlock()

		for _, n := range notices {
			m.notify(n.hbID, heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: n.pos})
		}
		for _, e := range timedOut {
			m.release(e, ReleaseQueueTimeout)
		}
		if len(timedOut) > 0 {
			continue
		}
		if head != nil {
			if m.admitHead(head) {
				continue
			}
		}
		// A fresh timer per wait: Reset on a timer inside a synctest bubble
		// has lost timers in our churn test (see golang/go#76052).
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-m.kick:
		case <-m.runCtx.Done():
		}
		timer.Stop()
	}
}

// noticesPerMove is the position notices each departure from the queue
// (an admission, a user leaving) pays for.
const noticesPerMove = 4

// positionRoundLocked picks the position notices due: users whose position
// changed and who got none within the notice interval. It also returns when
// the first user it had to skip may have its notice (zero if none). Caller
// holds m.mu.
func (m *SessionManager) positionRoundLocked(now time.Time) (out []positionNotice, next time.Time) {
	m.queue.dirty = false
	// Each departure pays for a few notices, spent front of the
	// queue first: notices per admission stay O(1) however long the queue,
	// and users further back, whose place matters less, hear of it as the
	// credit allows (their shown position is then higher than the real
	// one, never lower). Credit left unspent carries over, capped at what
	// the whole queue could use.
	m.queue.credit = min(m.queue.credit, noticesPerMove*(m.queue.live+1))
	budget := m.queue.credit
	defer func() { m.queue.credit -= len(out) }()
	m.queue.each(func(e *entry, pos int) bool {
		if e.sentPos == pos {
			return true
		}
		if len(out) >= budget {
			m.queue.dirty = true
			return false
		}
		if at := e.sentAt.Add(m.cfg.noticeInterval); now.Before(at) {
			m.queue.dirty = true // its turn comes later
			if next.IsZero() || at.Before(next) {
				next = at
			}
			return true
		}
		e.sentPos, e.sentAt = pos, now
		out = append(out, positionNotice{e.hbID, pos})
		return true
	})
	return out, next
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
		if err := m.hb.Touch(e.hbID); err != nil {
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
