package heartbeat

import (
	"context"
	"sync"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/deadline"
)

// MemoryStore is a Store in the memory of one process, which several
// Servers of that process share, each through its own [MemoryStore.Replica]
// view: replicas in one process, and tests of the multi-replica behaviour
// without Redis. Its clock is time.Now (fake inside a testing/synctest
// bubble); messages are delivered synchronously. It never fails, so it
// never returns a *StoreError. Its deadlines are kept in a min-heap, so a
// Sweep costs what it takes, not the number of sessions.
//
// A Server without [WithStore] runs on a MemoryStore of its own, which no
// other Server shares: it has no owner leases (its only owner is the
// Server, and they go together), it routes nothing (every connection is
// the Server's own), it runs on the Server's clock, and it tells the
// Server when its next deadline is due, so that grace ends and idle
// thresholds fire at their moment rather than at the next sweep.
type MemoryStore struct {
	ownerTTL time.Duration // 0: owners never lapse (a Server's own store)
	now      func() time.Time

	mu        sync.Mutex
	lastSweep time.Time
	forgot    bool // Forget was called: the next Refresh rebuilds
	sessions  map[string]*memSession
	due       deadline.Heap[*memSession, memOrder]
	listeners map[string]func(StoreMessage)
	wake      func() // the own store's Server: the earliest deadline moved earlier
	woken     bool   // call wake once m.mu is released
}

type memSession struct {
	id           string
	state        SessionState
	lost         bool // disconnected because its owner stopped refreshing
	join, resume string
	owner        string
	epoch        uint64
	timing       Timing
	openedAt     time.Time
	since        time.Time // entered state at
	lastSeen     time.Time // the client's last frame, as last reported
	refreshed    time.Time // the owner's last refresh (connected only)
	activity     time.Time
	idleTimes    int
	// toldUntil: activity came from a Touch or a replaced connection's
	// handover and the owner has not reported it back yet; until then it
	// outlives the owner's older reports (see ownerActivity).
	toldUntil time.Time
	expiresAt time.Time // not connected only
	pending   []pendingNotice

	at    time.Time // its earliest deadline, while in MemoryStore.due
	index int       // in MemoryStore.due; -1 when not in it
}

type memOrder struct{}

func (memOrder) Less(a, b *memSession) bool { return a.at.Before(b.at) }
func (memOrder) Index(ms *memSession) *int  { return &ms.index }

// NewMemoryStore returns an empty MemoryStore whose owner lease is
// StoreOwnerTTL.
func NewMemoryStore() *MemoryStore {
	return newMemoryStore(StoreOwnerTTL, time.Now)
}

func newMemoryStore(ownerTTL time.Duration, now func() time.Time) *MemoryStore {
	return &MemoryStore{
		ownerTTL:  ownerTTL,
		now:       now,
		lastSweep: now(),
		sessions:  make(map[string]*memSession),
		listeners: make(map[string]func(StoreMessage)),
	}
}

// Replica returns the view of replica id, to give to that replica's Server
// (WithStore).
func (m *MemoryStore) Replica(id string) Store { return &memReplica{m: m, id: id} }

// Forget drops every session, as a store restarted empty would.
func (m *MemoryStore) Forget() {
	m.mu.Lock()
	clear(m.sessions)
	for _, ms := range m.due {
		ms.index = -1
	}
	m.due = nil
	m.forgot = true
	m.mu.Unlock()
}

// Len reports how many sessions the store has.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// nextAt is ms's earliest deadline: the owner lease of a connected
// session, the next idle threshold and the grace end of one with no
// client. Caller holds m.mu.
func (m *MemoryStore) nextAt(ms *memSession) (time.Time, bool) {
	if ms.state == SessionConnected {
		if m.ownerTTL <= 0 {
			return time.Time{}, false
		}
		return ms.refreshed.Add(m.ownerTTL), true
	}
	at := ms.expiresAt
	if idle := ms.timing.Idle; idle > 0 {
		if next := ms.activity.Add(time.Duration(ms.idleTimes+1) * idle); next.Before(at) {
			at = next
		}
	}
	return at, true
}

// reschedule puts ms in the deadline heap at its earliest deadline (or
// takes it out), and wakes the own store's Server if that is now the
// earliest of all. Caller holds m.mu.
func (m *MemoryStore) reschedule(ms *memSession) {
	at, ok := m.nextAt(ms)
	switch {
	case !ok:
		m.due.Remove(ms)
		return
	case ms.index < 0:
		ms.at = at
		m.due.Push(ms)
	case !at.Equal(ms.at):
		ms.at = at
		m.due.Fix(ms)
	}
	if m.wake != nil && ms.index == 0 {
		m.woken = true
	}
}

// unlock releases m.mu, then wakes the own store's Server if a deadline
// became the earliest meanwhile.
func (m *MemoryStore) unlock() {
	wake := m.woken
	m.woken = false
	f := m.wake
	m.mu.Unlock()
	if wake {
		f()
	}
}

// remove deletes ms. Caller holds m.mu.
func (m *MemoryStore) remove(ms *memSession) {
	delete(m.sessions, ms.id)
	m.due.Remove(ms)
}

type memReplica struct {
	m  *MemoryStore
	id string
}

func (r *memReplica) Replica() string { return r.id }

func (r *memReplica) Listen(deliver func(StoreMessage)) (stop func()) {
	m := r.m
	m.mu.Lock()
	m.listeners[r.id] = deliver
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.listeners, r.id)
		m.mu.Unlock()
	}
}

// send delivers msg to replica with m.mu not held, and reports whether the
// replica listens.
func (m *MemoryStore) send(replica string, msg StoreMessage) bool {
	m.mu.Lock()
	f := m.listeners[replica]
	m.mu.Unlock()
	if f != nil {
		f(msg)
	}
	return f != nil
}

func (r *memReplica) Open(_ context.Context, id, join string, t Timing) error {
	m := r.m
	now := m.now()
	m.mu.Lock()
	defer m.unlock()
	ms := m.sessions[id]
	if ms == nil {
		ms = &memSession{id: id, state: SessionWaiting, timing: t, openedAt: now, activity: now, index: -1}
		m.sessions[id] = ms
	}
	ms.join = join
	if ms.state != SessionConnected {
		ms.since, ms.expiresAt = now, now.Add(t.Window)
		m.reschedule(ms)
	}
	return nil
}

func (r *memReplica) Claim(_ context.Context, id, used, resume string) (Claim, error) {
	m := r.m
	now := m.now()
	m.mu.Lock()
	ms := m.sessions[id]
	if ms == nil {
		m.unlock()
		return Claim{}, ErrUnknownSession
	}
	join := ms.join != "" && used == ms.join
	if !join && (ms.resume == "" || used != ms.resume) {
		m.unlock()
		return Claim{}, ErrTokenUsed
	}
	if join {
		ms.join = ""
	}
	cl := Claim{Resumed: ms.state != SessionWaiting, Timing: ms.timing, IdleTimes: ms.idleTimes,
		ActivityAge: max(0, now.Sub(ms.activity)), OpenedAge: max(0, now.Sub(ms.openedAt))}
	if ms.state == SessionConnected {
		cl.PrevOwner, cl.PrevEpoch = ms.owner, ms.epoch
	}
	ms.epoch++
	ms.toldUntil = time.Time{} // the new owner has the activity from this claim
	ms.resume, ms.owner, ms.state, ms.lost = resume, r.id, SessionConnected, false
	ms.refreshed, ms.lastSeen, ms.since = now, now, now
	cl.Epoch = ms.epoch
	for _, p := range ms.pending {
		cl.Notices = append(cl.Notices, p.frame)
	}
	ms.pending = nil
	m.reschedule(ms)
	m.unlock()
	if cl.PrevOwner != "" && cl.PrevOwner != r.id {
		cl.PrevGone = !m.send(cl.PrevOwner, StoreMessage{Kind: MessageReplaced, Session: id, Epoch: cl.PrevEpoch})
	}
	return cl, nil
}

func (r *memReplica) Detach(_ context.Context, id string, d Detach) error {
	m := r.m
	now := m.now()
	m.mu.Lock()
	ms := m.sessions[id]
	if ms != nil && ms.epoch > d.Epoch {
		// Replaced: the old connection hands over its last activity.
		owner := ""
		if act := now.Add(-d.ActivityAge); !d.ActivityKnown && act.After(ms.activity) {
			ms.activity, ms.idleTimes, ms.toldUntil = act, 0, now.Add(toldFor)
			if ms.state == SessionConnected {
				owner = ms.owner
			}
		}
		m.reschedule(ms)
		m.unlock()
		if owner != "" {
			m.send(owner, StoreMessage{Kind: MessageTouch, Session: id, ActivityAge: d.ActivityAge})
		}
		return nil
	}
	defer m.unlock()
	if ms == nil || ms.owner != r.id || ms.epoch != d.Epoch || ms.state != SessionConnected {
		return nil
	}
	ms.state, ms.since = SessionDisconnected, now
	ms.lastSeen = now.Add(-d.LastSeenAge)
	ms.expiresAt = maxTime(now, ms.lastSeen.Add(d.Grace))
	ms.ownerActivity(now, now.Add(-d.ActivityAge), d.IdleTimes)
	if d.Revoke {
		ms.resume = ""
	}
	m.reschedule(ms)
	return nil
}

func (r *memReplica) Refresh(_ context.Context, held []Held) (RefreshResult, error) {
	m := r.m
	now := m.now()
	m.mu.Lock()
	defer m.unlock()
	res := RefreshResult{Status: make([]HeldStatus, len(held))}
	if m.forgot && len(held) > 0 {
		m.forgot = false
		res.Rebuilt = true
		for _, h := range held {
			m.sessions[h.Session] = &memSession{
				id: h.Session, state: SessionConnected, resume: h.Resume, owner: r.id, epoch: h.Epoch, timing: h.Timing,
				openedAt: now, since: now, activity: now.Add(-h.ActivityAge), idleTimes: h.IdleTimes, index: -1,
			}
		}
	}
	for i, h := range held {
		ms := m.sessions[h.Session]
		switch {
		case ms == nil:
			res.Status[i] = HeldGone
			continue
		case ms.owner != r.id || ms.epoch != h.Epoch:
			res.Status[i] = HeldReplaced
			continue
		case ms.state != SessionConnected && !ms.lost:
			continue // detached meanwhile: a stale refresh changes nothing
		case ms.state != SessionConnected:
			ms.state, ms.lost, ms.since = SessionConnected, false, now
			res.Status[i] = HeldRevived
		}
		ms.refreshed = now
		ms.lastSeen = now.Add(-h.LastSeenAge)
		ms.ownerActivity(now, now.Add(-h.ActivityAge), h.IdleTimes)
		m.reschedule(ms)
	}
	return res, nil
}

func (r *memReplica) ReportIdle(_ context.Context, id string, epoch uint64, activityAge time.Duration, times int) (bool, error) {
	m := r.m
	now := m.now()
	m.mu.Lock()
	defer m.unlock()
	ms := m.sessions[id]
	if ms == nil || ms.owner != r.id || ms.epoch != epoch || ms.state != SessionConnected {
		return false, nil
	}
	ms.ownerActivity(now, now.Add(-activityAge), times)
	return true, nil
}

// ownerActivity records the idle count the owner reports (a Refresh, its
// own Detach, a ReportIdle): threshold times since activity act. An
// activity told by someone else (a Touch, a replaced connection's
// handover) that the owner has not caught up with is kept, with its count:
// a report made before the owner heard of it (a MessageTouch still on its
// way, a record delayed behind the Touch) must not bring the next idle
// threshold forward. The owner reports the told activity back no earlier
// than the store has it (it counts from the message's arrival), and
// toldActivitySlack covers what rounding takes. The rule holds for
// toldFor after the tell, longer than a report can lag: an owner still
// reporting an older activity then never got the message, and its count is
// the one that goes on.
func (ms *memSession) ownerActivity(now, act time.Time, times int) {
	if now.Before(ms.toldUntil) && act.Before(ms.activity.Add(-toldActivitySlack)) {
		return
	}
	ms.activity, ms.idleTimes, ms.toldUntil = act, times, time.Time{}
}

// toldFor is how long a told activity outlives the owner's older reports:
// the owner lease, more than a report can lag behind its measurement (a
// store call's timeout, and a refresh batch's wait).
const toldFor = StoreOwnerTTL

// toldActivitySlack is how much earlier than a told activity an owner's
// report of it may come out and still be taken as that activity: the
// milliseconds a store rounds to. An activity of the owner's own that
// close before it is, for the idle count, the same.
const toldActivitySlack = 5 * time.Millisecond

func (r *memReplica) Touch(_ context.Context, id string) error {
	m := r.m
	now := m.now()
	m.mu.Lock()
	ms := m.sessions[id]
	if ms == nil {
		m.unlock()
		return ErrUnknownSession
	}
	ms.activity, ms.idleTimes, ms.toldUntil = now, 0, now.Add(toldFor)
	m.reschedule(ms)
	owner := ""
	if ms.state == SessionConnected {
		owner = ms.owner
	}
	m.unlock()
	if owner != "" {
		m.send(owner, StoreMessage{Kind: MessageTouch, Session: id})
	}
	return nil
}

func (r *memReplica) Notify(_ context.Context, id, key string, frame []byte) error {
	m := r.m
	m.mu.Lock()
	ms := m.sessions[id]
	if ms == nil {
		m.unlock()
		return ErrUnknownSession
	}
	// Route or keep is decided, and a notice kept, in one step with Claim
	// (under m.mu): a notice is never kept after a Claim took the kept
	// ones, where only a later connection would get it. Nobody listening
	// for the owner means it is gone: the notice is kept.
	if deliver := m.listeners[ms.owner]; ms.state == SessionConnected && deliver != nil {
		msg := StoreMessage{Kind: MessageNotice, Session: id, Epoch: ms.epoch, Key: key, Frame: frame}
		m.unlock()
		deliver(msg)
		return nil
	}
	defer m.unlock()
	for i := range ms.pending {
		if ms.pending[i].key == key {
			ms.pending[i].frame = frame
			return nil
		}
	}
	if len(ms.pending) >= maxPendingNotices {
		return ErrTooManyNotices
	}
	ms.pending = append(ms.pending, pendingNotice{key: key, frame: frame})
	return nil
}

func (r *memReplica) End(_ context.Context, id, reason string) error {
	m := r.m
	m.mu.Lock()
	ms := m.sessions[id]
	if ms == nil {
		m.unlock()
		return ErrUnknownSession
	}
	m.remove(ms)
	m.unlock()
	if ms.state == SessionConnected && ms.owner != r.id {
		m.send(ms.owner, StoreMessage{Kind: MessageRelease, Session: id, Reason: reason})
	}
	return nil
}

func (r *memReplica) Sweep(_ context.Context, limit int) ([]Due, error) {
	m := r.m
	now := m.now()
	m.mu.Lock()
	defer m.unlock()
	if m.ownerTTL > 0 && now.Sub(m.lastSweep) > m.ownerTTL {
		// Nobody swept for longer than an owner lease: the store was
		// unreachable. Owners get a fresh lease to refresh before they
		// count as gone.
		for _, ms := range m.sessions {
			if ms.state == SessionConnected {
				ms.refreshed = now
				m.reschedule(ms)
			}
		}
	}
	m.lastSweep = now
	var due []Due
	for len(due) < limit && len(m.due) > 0 && !m.due[0].at.After(now) {
		ms := m.due[0]
		id := ms.id
		if ms.state == SessionConnected {
			ms.state, ms.lost, ms.since = SessionDisconnected, true, now
			ms.expiresAt = maxTime(now, ms.lastSeen.Add(ms.timing.Window))
			due = append(due, Due{Kind: DueLost, Session: id, At: now, LastSeen: ms.lastSeen, ExpiresAt: ms.expiresAt})
		}
		if idle := ms.timing.Idle; idle > 0 {
			for n := int(now.Sub(ms.activity) / idle); ms.idleTimes < n && len(due) < limit; {
				ms.idleTimes++
				due = append(due, Due{Kind: DueIdle, Session: id, At: ms.activity.Add(time.Duration(ms.idleTimes) * idle), Times: ms.idleTimes})
			}
		}
		if !now.Before(ms.expiresAt) && len(due) < limit {
			m.remove(ms)
			due = append(due, Due{Kind: DueExpired, Session: id, At: now})
			continue
		}
		m.reschedule(ms)
	}
	return due, nil
}

// ownStore is the MemoryStore of a Server without WithStore: nobody else
// shares it (see MemoryStore).
type ownStore struct{ memReplica }

func newOwnStore(now func() time.Time) *ownStore {
	return &ownStore{memReplica{m: newMemoryStore(0, now), id: "own"}}
}

// Refresh has nothing to do: the store's one owner never lapses.
func (o *ownStore) Refresh(_ context.Context, held []Held) (RefreshResult, error) {
	return RefreshResult{Status: make([]HeldStatus, len(held))}, nil
}

// onDue registers wake, called (after the store call that set it, with no
// lock of the store held) when a deadline becomes the earliest.
func (o *ownStore) onDue(wake func()) {
	o.m.mu.Lock()
	o.m.wake = wake
	o.m.mu.Unlock()
}

// nextDue reports the earliest deadline.
func (o *ownStore) nextDue() (time.Time, bool) {
	m := o.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.due) == 0 {
		return time.Time{}, false
	}
	return m.due[0].at, true
}

// memView is what the own store reports of a session (Server.Session).
type memView struct {
	state                                     SessionState
	openedAt, since, lastSeen, expiresAt, act time.Time
	idleTimes                                 int
}

// view reports session id as the store has it.
func (o *ownStore) view(id string) (memView, bool) {
	m := o.m
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.sessions[id]
	if ms == nil {
		return memView{}, false
	}
	return memView{state: ms.state, openedAt: ms.openedAt, since: ms.since, lastSeen: ms.lastSeen, expiresAt: ms.expiresAt, act: ms.activity, idleTimes: ms.idleTimes}, true
}

// count is the number of sessions (Server.Len).
func (o *ownStore) count() int { return o.m.Len() }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
