package heartbeat

import (
	"context"
	"sync"
	"time"
)

// MemoryStore is a Store in the memory of one process, which several
// Servers of that process share, each through its own [MemoryStore.Replica]
// view: replicas in one process, and tests of the multi-replica behaviour
// without Redis. Its clock is time.Now (fake inside a testing/synctest
// bubble); messages are delivered synchronously. It never fails, so it
// never returns a *StoreError. Deadlines are found by scanning every
// session at each Sweep: fine for tests and for thousands of sessions, not
// for a large deployment.
type MemoryStore struct {
	ownerTTL time.Duration

	mu        sync.Mutex
	lastSweep time.Time
	forgot    bool // Forget was called: the next Refresh rebuilds
	sessions  map[string]*memSession
	listeners map[string]func(StoreMessage)
}

type memSession struct {
	state        SessionState
	lost         bool // disconnected because its owner stopped refreshing
	join, resume string
	owner        string
	epoch        uint64
	timing       Timing
	lastSeen     time.Time // the client's last frame, as last reported
	refreshed    time.Time // the owner's last refresh (connected only)
	activity     time.Time
	idleTimes    int
	expiresAt    time.Time // not connected only
	pending      []pendingNotice
}

// NewMemoryStore returns an empty MemoryStore whose owner lease is
// StoreOwnerTTL.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		ownerTTL:  StoreOwnerTTL,
		lastSweep: time.Now(),
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
	m.forgot = true
	m.mu.Unlock()
}

// Len reports how many sessions the store has.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
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
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.sessions[id]
	if ms == nil {
		ms = &memSession{state: SessionWaiting, timing: t, activity: now}
		m.sessions[id] = ms
	}
	ms.join = join
	if ms.state != SessionConnected {
		ms.expiresAt = now.Add(t.Window)
	}
	return nil
}

func (r *memReplica) Claim(_ context.Context, id, used, resume string) (Claim, error) {
	m := r.m
	now := time.Now()
	m.mu.Lock()
	ms := m.sessions[id]
	if ms == nil {
		m.mu.Unlock()
		return Claim{}, ErrUnknownSession
	}
	join := ms.join != "" && used == ms.join
	if !join && (ms.resume == "" || used != ms.resume) {
		m.mu.Unlock()
		return Claim{}, ErrTokenUsed
	}
	if join {
		ms.join = ""
	}
	cl := Claim{Resumed: ms.state != SessionWaiting, Timing: ms.timing, IdleTimes: ms.idleTimes, ActivityAge: max(0, now.Sub(ms.activity))}
	if ms.state == SessionConnected {
		cl.PrevOwner, cl.PrevEpoch = ms.owner, ms.epoch
	}
	ms.epoch++
	ms.resume, ms.owner, ms.state, ms.lost = resume, r.id, SessionConnected, false
	ms.refreshed, ms.lastSeen = now, now
	cl.Epoch = ms.epoch
	for _, p := range ms.pending {
		cl.Notices = append(cl.Notices, p.frame)
	}
	ms.pending = nil
	m.mu.Unlock()
	if cl.PrevOwner != "" && cl.PrevOwner != r.id {
		cl.PrevGone = !m.send(cl.PrevOwner, StoreMessage{Kind: MessageReplaced, Session: id, Epoch: cl.PrevEpoch})
	}
	return cl, nil
}

func (r *memReplica) Detach(_ context.Context, id string, d Detach) error {
	m := r.m
	now := time.Now()
	m.mu.Lock()
	ms := m.sessions[id]
	if ms != nil && ms.epoch > d.Epoch {
		// Replaced: the old connection hands over its last activity.
		owner := ""
		if act := now.Add(-d.ActivityAge); act.After(ms.activity) {
			ms.activity, ms.idleTimes = act, 0
			if ms.state == SessionConnected {
				owner = ms.owner
			}
		}
		m.mu.Unlock()
		if owner != "" {
			m.send(owner, StoreMessage{Kind: MessageTouch, Session: id, ActivityAge: d.ActivityAge})
		}
		return nil
	}
	defer m.mu.Unlock()
	if ms == nil || ms.owner != r.id || ms.epoch != d.Epoch || ms.state != SessionConnected {
		return nil
	}
	ms.state = SessionDisconnected
	ms.lastSeen = now.Add(-d.LastSeenAge)
	ms.expiresAt = maxTime(now, ms.lastSeen.Add(d.Grace))
	ms.activity, ms.idleTimes = now.Add(-d.ActivityAge), d.IdleTimes
	if d.Revoke {
		ms.resume = ""
	}
	return nil
}

func (r *memReplica) Refresh(_ context.Context, held []Held) (RefreshResult, error) {
	m := r.m
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	res := RefreshResult{Status: make([]HeldStatus, len(held))}
	if m.forgot && len(held) > 0 {
		m.forgot = false
		res.Rebuilt = true
		for _, h := range held {
			m.sessions[h.Session] = &memSession{
				state: SessionConnected, resume: h.Resume, owner: r.id, epoch: h.Epoch, timing: h.Timing,
				activity: now.Add(-h.ActivityAge), idleTimes: h.IdleTimes,
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
			ms.state, ms.lost = SessionConnected, false
			res.Status[i] = HeldRevived
		}
		ms.refreshed = now
		ms.lastSeen = now.Add(-h.LastSeenAge)
		ms.activity, ms.idleTimes = now.Add(-h.ActivityAge), h.IdleTimes
	}
	return res, nil
}

func (r *memReplica) Touch(_ context.Context, id string) error {
	m := r.m
	now := time.Now()
	m.mu.Lock()
	ms := m.sessions[id]
	if ms == nil {
		m.mu.Unlock()
		return ErrUnknownSession
	}
	ms.activity, ms.idleTimes = now, 0
	owner := ""
	if ms.state == SessionConnected {
		owner = ms.owner
	}
	m.mu.Unlock()
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
		m.mu.Unlock()
		return ErrUnknownSession
	}
	// Route or keep is decided, and a notice kept, in one step with Claim
	// (under m.mu): a notice is never kept after a Claim took the kept
	// ones, where only a later connection would get it. Nobody listening
	// for the owner means it is gone: the notice is kept.
	if deliver := m.listeners[ms.owner]; ms.state == SessionConnected && deliver != nil {
		msg := StoreMessage{Kind: MessageNotice, Session: id, Epoch: ms.epoch, Key: key, Frame: frame}
		m.mu.Unlock()
		deliver(msg)
		return nil
	}
	defer m.mu.Unlock()
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
		m.mu.Unlock()
		return ErrUnknownSession
	}
	delete(m.sessions, id)
	m.mu.Unlock()
	if ms.state == SessionConnected && ms.owner != r.id {
		m.send(ms.owner, StoreMessage{Kind: MessageRelease, Session: id, Reason: reason})
	}
	return nil
}

func (r *memReplica) Sweep(_ context.Context, limit int) ([]Due, error) {
	m := r.m
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.lastSweep) > m.ownerTTL {
		// Nobody swept for longer than an owner lease: the store was
		// unreachable. Owners get a fresh lease to refresh before they
		// count as gone.
		for _, ms := range m.sessions {
			if ms.state == SessionConnected {
				ms.refreshed = now
			}
		}
	}
	m.lastSweep = now
	var due []Due
	for id, ms := range m.sessions {
		if len(due) >= limit {
			break
		}
		if ms.state == SessionConnected {
			if now.Before(ms.refreshed.Add(m.ownerTTL)) {
				continue
			}
			ms.state, ms.lost = SessionDisconnected, true
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
			delete(m.sessions, id)
			due = append(due, Due{Kind: DueExpired, Session: id, At: now})
		}
	}
	return due, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
