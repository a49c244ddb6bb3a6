package car

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryLeaseStore is a LeaseStore in one process's memory, shared by the
// managers of that process: each takes its own view, Replica(id). It keeps
// the same rules as the Redis store (package redisstore), on the local
// clock, and survives nothing: use it for tests and for several managers in
// one process.
type MemoryLeaseStore struct {
	mu       sync.Mutex
	gen      uint64
	ticket   uint64
	leases   map[string]*memLease
	queue    []*memLease // by ticket
	head     string      // replica holding the head lock
	headTill time.Time
	watchers map[int]func(LeaseEvent)
	nextW    int
	fail     error // Fail's error, for tests
}

type memLease struct {
	rec  LeaseRecord
	till time.Time // hold deadline
}

// NewMemoryLeaseStore returns an empty store.
func NewMemoryLeaseStore() *MemoryLeaseStore {
	return &MemoryLeaseStore{leases: make(map[string]*memLease), watchers: make(map[int]func(LeaseEvent))}
}

// Replica returns replica id's view of the store, for WithLeaseStore.
func (s *MemoryLeaseStore) Replica(id string) LeaseStore { return &memView{s: s, id: id} }

// Fail makes every call of every view fail with err wrapped in a
// *StoreError, as an unreachable store does, until Fail(nil).
func (s *MemoryLeaseStore) Fail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// Leases lists the stored leases, by UserId.
func (s *MemoryLeaseStore) Leases() []LeaseRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LeaseRecord, 0, len(s.leases))
	now := time.Now()
	for _, l := range s.leases {
		out = append(out, l.read(now))
	}
	slices.SortFunc(out, func(a, b LeaseRecord) int {
		switch {
		case a.UserId < b.UserId:
			return -1
		case a.UserId > b.UserId:
			return 1
		}
		return 0
	})
	return out
}

func (l *memLease) read(now time.Time) LeaseRecord {
	r := l.rec
	if r.Holder != "" && now.Before(l.till) {
		r.HoldLeft = l.till.Sub(now)
	} else {
		r.HoldLeft = 0
	}
	if r.State == LeaseStarting {
		r.Applied = true // ApplyConcurrent may be running or have run
	}
	return r
}

func (l *memLease) heldBy(now time.Time, other string) bool {
	return l.rec.Holder != "" && l.rec.Holder != other && now.Before(l.till)
}

type memView struct {
	s  *MemoryLeaseStore
	id string
}

func (v *memView) Replica() string { return v.id }

// lock takes the store's lock, or returns the Fail error.
func (v *memView) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &StoreError{Op: op, Err: err}
	}
	v.s.mu.Lock()
	if v.s.fail != nil {
		err := v.s.fail
		v.s.mu.Unlock()
		return &StoreError{Op: op, Err: err}
	}
	return nil
}

// unlock releases the lock and tells the watchers of ev (if any).
func (v *memView) unlock(evs ...LeaseEvent) {
	var ws []func(LeaseEvent)
	if len(evs) > 0 {
		for _, f := range v.s.watchers {
			ws = append(ws, f)
		}
	}
	v.s.mu.Unlock()
	for _, ev := range evs {
		for _, f := range ws {
			f(ev)
		}
	}
}

func (v *memView) Create(ctx context.Context, c CreateLease) (LeaseRecord, bool, error) {
	if err := v.lock(ctx, "create"); err != nil {
		return LeaseRecord{}, false, err
	}
	now := time.Now()
	if l := v.s.leases[c.Request.UserId]; l != nil {
		r := l.read(now)
		v.unlock()
		return r, false, nil
	}
	queue := c.Queue && len(v.s.queue) > 0
	if queue && len(v.s.queue) >= c.QueueLimit {
		v.unlock()
		return LeaseRecord{}, false, ErrQueueFull
	}
	v.s.gen++
	l := &memLease{rec: LeaseRecord{UserId: c.Request.UserId, Generation: v.s.gen, Owner: v.id, Request: c.Request}}
	var evs []LeaseEvent
	if queue {
		v.enqueueLocked(l)
		evs = append(evs, LeaseEvent{Kind: LeaseEventQueue, UserId: l.rec.UserId, Generation: l.rec.Generation, Replica: v.id})
	} else {
		l.rec.State, l.rec.Holder = LeaseStarting, v.id
		l.till = now.Add(c.Hold)
	}
	v.s.leases[l.rec.UserId] = l
	r := l.read(now)
	v.unlock(evs...)
	return r, true, nil
}

func (v *memView) enqueueLocked(l *memLease) {
	l.rec.State, l.rec.Holder = LeaseQueued, ""
	if v.queueIndex(l) >= 0 {
		return
	}
	if l.rec.Ticket == 0 {
		v.s.ticket++
		l.rec.Ticket = v.s.ticket
	}
	i, _ := v.search(l.rec.Ticket)
	v.s.queue = slices.Insert(v.s.queue, i, l)
}

// search finds ticket t in the queue (kept in ticket order): O(log n).
func (v *memView) search(t uint64) (int, bool) {
	return slices.BinarySearchFunc(v.s.queue, t, func(e *memLease, t uint64) int { return cmp.Compare(e.rec.Ticket, t) })
}

// queueIndex is l's index in the queue, or -1.
func (v *memView) queueIndex(l *memLease) int {
	if l.rec.Ticket == 0 {
		return -1
	}
	if i, ok := v.search(l.rec.Ticket); ok && v.s.queue[i] == l {
		return i
	}
	return -1
}

func (v *memView) dequeueLocked(l *memLease) bool {
	if i := v.queueIndex(l); i >= 0 {
		v.s.queue = slices.Delete(v.s.queue, i, i+1)
		return true
	}
	return false
}

func (v *memView) List(ctx context.Context) ([]LeaseRecord, error) {
	if err := v.lock(ctx, "list"); err != nil {
		return nil, err
	}
	v.unlock()
	return v.s.Leases(), nil
}

func (v *memView) Orphans(ctx context.Context, limit int) ([]LeaseRecord, error) {
	recs, err := v.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []LeaseRecord
	for _, r := range recs {
		if r.State == LeaseReleasing && r.HoldLeft == 0 && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (v *memView) Get(ctx context.Context, userID string) (LeaseRecord, bool, error) {
	if err := v.lock(ctx, "get"); err != nil {
		return LeaseRecord{}, false, err
	}
	defer v.unlock()
	if l := v.s.leases[userID]; l != nil {
		return l.read(time.Now()), true, nil
	}
	return LeaseRecord{}, false, nil
}

func (v *memView) Update(ctx context.Context, userID string, gen uint64, u LeaseUpdate) (LeaseRecord, error) {
	if err := v.lock(ctx, "update"); err != nil {
		return LeaseRecord{}, err
	}
	now := time.Now()
	l := v.s.leases[userID]
	if l == nil || l.rec.Generation != gen || l.rec.State == LeaseReleasing {
		v.unlock()
		return LeaseRecord{}, ErrLeaseGone
	}
	var evs []LeaseEvent
	l.rec.Applied = l.rec.Applied || u.Applied
	switch u.State {
	case LeaseStarting:
		if l.heldBy(now, v.id) {
			r := l.read(now)
			v.unlock()
			return r, ErrLeaseHeld
		}
		l.rec.State, l.rec.Holder = LeaseStarting, v.id
		l.till = now.Add(u.Hold)
	case LeaseActive:
		if v.dequeueLocked(l) {
			evs = append(evs, LeaseEvent{Kind: LeaseEventAdmitted, UserId: userID, Generation: gen, Replica: v.id},
				LeaseEvent{Kind: LeaseEventQueue, UserId: userID, Generation: gen, Replica: v.id})
		}
		l.rec.State, l.rec.Holder, l.rec.Owner = LeaseActive, "", v.id
		if u.ServerSession != "" {
			l.rec.ServerSession = u.ServerSession
		}
	case LeaseQueued:
		joined := v.queueIndex(l) < 0
		v.enqueueLocked(l)
		if joined {
			evs = append(evs, LeaseEvent{Kind: LeaseEventQueue, UserId: userID, Generation: gen, Replica: v.id})
		}
	default:
		v.unlock()
		return LeaseRecord{}, &StoreError{Op: "update", Err: errStateNotStored(u.State)}
	}
	r := l.read(now)
	v.unlock(evs...)
	return r, nil
}

type errStateNotStored LeaseState

func (e errStateNotStored) Error() string {
	return "state " + LeaseState(e).String() + " cannot be set with Update"
}

func (v *memView) Claim(ctx context.Context, c ClaimRequest) (Claim, error) {
	if err := v.lock(ctx, "claim"); err != nil {
		return Claim{}, err
	}
	now := time.Now()
	l := v.s.leases[c.UserId]
	if l == nil || l.rec.Generation != c.Generation {
		v.unlock()
		return Claim{Gone: true}, nil
	}
	if l.heldBy(now, v.id) {
		r := l.read(now)
		v.unlock()
		return Claim{RetryIn: r.HoldLeft, Record: r}, nil
	}
	if c.IfHolding && l.rec.State == LeaseQueued {
		r := l.read(now)
		v.unlock()
		return Claim{NotHolding: true, Record: r}, nil
	}
	out := Claim{Won: true}
	if l.rec.State == LeaseReleasing && l.rec.Holder != v.id {
		out.TakenOver = true
	}
	var evs []LeaseEvent
	if v.dequeueLocked(l) {
		evs = append(evs, LeaseEvent{Kind: LeaseEventQueue, UserId: c.UserId, Generation: c.Generation, Replica: v.id})
	}
	if l.rec.State != LeaseReleasing {
		l.rec.Reason = c.Reason
	}
	if l.rec.State == LeaseStarting && l.rec.Holder != v.id {
		l.rec.Applied = true // its starter's ApplyConcurrent may have run; the starter itself knows
	}
	l.rec.State, l.rec.Holder = LeaseReleasing, v.id
	l.till = now.Add(c.TTL)
	out.Record = l.read(now)
	v.unlock(evs...)
	return out, nil
}

func (v *memView) Finish(ctx context.Context, userID string, gen uint64) (bool, error) {
	if err := v.lock(ctx, "finish"); err != nil {
		return false, err
	}
	l := v.s.leases[userID]
	if l == nil || l.rec.Generation != gen || l.rec.State != LeaseReleasing || l.rec.Holder != v.id {
		v.unlock()
		return false, nil
	}
	delete(v.s.leases, userID)
	v.dequeueLocked(l)
	v.unlock(LeaseEvent{Kind: LeaseEventReleased, UserId: userID, Generation: gen, Replica: v.id})
	return true, nil
}

func (v *memView) Positions(ctx context.Context, userIDs []string) ([]int, error) {
	if err := v.lock(ctx, "positions"); err != nil {
		return nil, err
	}
	defer v.unlock()
	out := make([]int, len(userIDs))
	for i, id := range userIDs {
		if l := v.s.leases[id]; l != nil {
			out[i] = v.queueIndex(l) + 1
		}
	}
	return out, nil
}

func (v *memView) QueueLen(ctx context.Context) (int, error) {
	if err := v.lock(ctx, "queue length"); err != nil {
		return 0, err
	}
	defer v.unlock()
	return len(v.s.queue), nil
}

func (v *memView) LockHead(ctx context.Context, ttl time.Duration) (LeaseRecord, bool, error) {
	if err := v.lock(ctx, "lock head"); err != nil {
		return LeaseRecord{}, false, err
	}
	defer v.unlock()
	now := time.Now()
	if v.s.head != "" && v.s.head != v.id && now.Before(v.s.headTill) {
		return LeaseRecord{}, false, ErrHeadLocked
	}
	v.s.head, v.s.headTill = v.id, now.Add(ttl)
	if len(v.s.queue) == 0 {
		return LeaseRecord{}, false, nil
	}
	h := v.s.queue[0]
	if h.rec.State == LeaseStarting && !now.Before(h.till) {
		h.rec.State, h.rec.Holder = LeaseQueued, "" // its admitter died: it waits again
	}
	return h.read(now), true, nil
}

func (v *memView) UnlockHead(ctx context.Context) error {
	if err := v.lock(ctx, "unlock head"); err != nil {
		return err
	}
	defer v.unlock()
	if v.s.head == v.id {
		v.s.head = ""
	}
	return nil
}

func (v *memView) Watch(f func(LeaseEvent)) (stop func()) {
	v.s.mu.Lock()
	id := v.s.nextW
	v.s.nextW++
	v.s.watchers[id] = f
	v.s.mu.Unlock()
	return func() {
		v.s.mu.Lock()
		delete(v.s.watchers, id)
		v.s.mu.Unlock()
	}
}
