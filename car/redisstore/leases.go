package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
)

// The leases of a project (Store.Leases): a car.LeaseStore on Redis.
//
// Keys, all under the project's hash tag:
//
//	lease:<user>  HASH  gen, state, owner, claimer, applied, ticket, reason, req, ss
//	lhold:<user>  STRING the replica holding the lease (starting: the starter;
//	                     releasing: the claimer), SET PX: the hold ends when
//	                     Redis expires the key, on Redis's clock
//	lgen          the generation counter (INCR)
//	leases        SET of the users with a lease (List)
//	q             ZSET user → ticket: the queue
//	qseq          the ticket counter (INCR)
//	qhead         STRING the replica holding the head lock, SET PX
//	lclaims       ZSET user → when its release claim runs out (ms of Redis
//	                   TIME): the orphaned releases, for Orphans
//	lboot         STRING the data mark, "<epoch>:<random>" (rebuild.go)
//	lrebuilt      STRING set for rebuildWindow by a rebuild, PX
//	lend:<user>   STRING a generation finished within that window, PX
//
// Each decision is one Lua script over declared keys: create (generation,
// queue or hold), update (state changes fenced by the generation), claim,
// finish, lock head. Events (released, admitted, queue) go over the bus
// after the script; they are wake-ups, the state in Redis is the truth.

// kindLease is the bus message kind of lease events.
const kindLease = "car.lease"

func (k keys) lease(user string) string { return k.key("lease", user) }
func (k keys) leaseHold(user string) string {
	return k.key("lhold", user)
}
func (k keys) leaseGen() string { return k.key("lgen") }
func (k keys) leaseClaims() string {
	return k.key("lclaims")
}
func (k keys) leaseSet() string  { return k.key("leases") }
func (k keys) leaseBoot() string { return k.key("lboot") }
func (k keys) leaseRebuilt() string {
	return k.key("lrebuilt")
}
func (k keys) leaseEnded(user string) string { return k.key("lend", user) }
func (k keys) queue() string                 { return k.key("q") }
func (k keys) queueSeq() string              { return k.key("qseq") }
func (k keys) queueHead() string             { return k.key("qhead") }

// leaseStore is the car.LeaseStore of one replica.
type leaseStore struct {
	s *Store

	mu       sync.Mutex
	watchers map[int]func(car.LeaseEvent)
	nextW    int
	handling bool
	boot     string                   // the data mark last seen in Redis (rebuild.go); "" before the first
	held     func() []car.LeaseRecord // the manager's books (OnDataLoss)
	nextH    int                      // numbers OnDataLoss registrations

	rebuildMu sync.Mutex // one rebuild at a time
}

// Leases returns this replica's lease store, for car.WithLeaseStore (or
// car.WithStore, with Sessions). Every call returns the same value.
func (s *Store) Leases() car.LeaseStore {
	s.lsOnce.Do(func() { s.ls = &leaseStore{s: s, watchers: make(map[int]func(car.LeaseEvent))} })
	return s.ls
}

// leaseErr wraps a Redis failure as the car package's typed error.
func leaseErr(op string, err error) error {
	return &car.StoreError{Op: op, Err: fmt.Errorf("redisstore: %w", err)}
}

func (l *leaseStore) Replica() string { return l.s.replica }

// recLua reads a lease record: gen, state, owner, holder, hold left (ms),
// applied, ticket, reason, req, ss, claimer; false if there is none.
const recLua = `
local function rec(lk, hk)
  local h = redis.call('HMGET', lk, 'gen', 'state', 'owner', 'applied', 'ticket', 'reason', 'req', 'ss', 'claimer')
  if not h[1] then return false end
  local holder = redis.call('GET', hk)
  local left = 0
  if holder then
    left = redis.call('PTTL', hk)
    if left < 0 then left = 0 end
  else
    holder = ''
  end
  return {h[1], h[2] or '', h[3] or '', holder, left, h[4] or '0', h[5] or '0', h[6] or '', h[7] or '', h[8] or '', h[9] or ''}
end
`

var (
	// KEYS lease, hold. → rec or false
	readScript = leaseScript(recLua + `return rec(KEYS[1], KEYS[2])`)

	// KEYS lease, hold, lgen, q, qseq, leases; ARGV user, req, me,
	// queue (0|1), limit, hold ms. → {0, rec} existing, {-1} queue full,
	// {1, rec} created.
	createScript = leaseScript(recLua + `
local r = rec(KEYS[1], KEYS[2])
if r then return {0, r} end
local qlen = redis.call('ZCARD', KEYS[4])
local queue = ARGV[4] == '1' and qlen > 0
if queue and qlen >= tonumber(ARGV[5]) then return {-1} end
local gen = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'gen', gen, 'owner', ARGV[3], 'applied', '0', 'ticket', '0', 'req', ARGV[2])
if queue then
  local t = redis.call('INCR', KEYS[5])
  redis.call('HSET', KEYS[1], 'state', 'queued', 'ticket', t)
  redis.call('ZADD', KEYS[4], t, ARGV[1])
else
  redis.call('HSET', KEYS[1], 'state', 'starting')
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[6])
end
redis.call('SADD', KEYS[6], ARGV[1])
return {1, rec(KEYS[1], KEYS[2])}
`)

	// KEYS lease, hold, q, qseq; ARGV gen, state, hold ms, applied (0|1),
	// server session, me, user. → {-1} gone, {-2, rec} held elsewhere,
	// {1, rec, event}.
	updateScript = leaseScript(recLua + `
local g = redis.call('HGET', KEYS[1], 'gen')
local st = redis.call('HGET', KEYS[1], 'state')
if g ~= ARGV[1] or st == 'releasing' then return {-1} end
local ev = ''
if ARGV[2] == 'starting' then
  local holder = redis.call('GET', KEYS[2])
  if holder and holder ~= ARGV[6] then return {-2, rec(KEYS[1], KEYS[2])} end
  redis.call('HSET', KEYS[1], 'state', 'starting')
  redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[3])
elseif ARGV[2] == 'active' then
  if redis.call('ZREM', KEYS[3], ARGV[7]) == 1 then ev = 'admitted' end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'state', 'active', 'owner', ARGV[6])
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'ss', ARGV[5]) end
elseif ARGV[2] == 'queued' then
  redis.call('DEL', KEYS[2])
  local t = tonumber(redis.call('HGET', KEYS[1], 'ticket') or '0')
  if t == 0 then
    t = redis.call('INCR', KEYS[4])
    redis.call('HSET', KEYS[1], 'ticket', t)
  end
  if redis.call('ZADD', KEYS[3], 'NX', t, ARGV[7]) == 1 then ev = 'queue' end
  redis.call('HSET', KEYS[1], 'state', 'queued')
end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'applied', '1') end
return {1, rec(KEYS[1], KEYS[2]), ev}
`)

	// KEYS lease, hold, q, lgen, lclaims; ARGV gen, me, reason, ttl ms, if holding
	// (0|1), user. → {0} gone, {4} lost (the generation counter is behind
	// it: Redis lost its data; the counter is moved past it), {2, rec} held
	// elsewhere, {3, rec} not holding, {1, taken over (0|1), rec, event}.
	claimScript = leaseScript(recLua + `
local g = redis.call('HGET', KEYS[1], 'gen')
if g ~= ARGV[1] then
  if tonumber(redis.call('GET', KEYS[4]) or '0') < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[4], ARGV[1])
    return {4}
  end
  return {0}
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return {2, rec(KEYS[1], KEYS[2])} end
local st = redis.call('HGET', KEYS[1], 'state')
if ARGV[5] == '1' and st == 'queued' then return {3, rec(KEYS[1], KEYS[2])} end
local taken = 0
if st == 'releasing' and redis.call('HGET', KEYS[1], 'claimer') ~= ARGV[2] then taken = 1 end
local ev = ''
if redis.call('ZREM', KEYS[3], ARGV[6]) == 1 then ev = 'queue' end
if st ~= 'releasing' then redis.call('HSET', KEYS[1], 'reason', ARGV[3]) end
if st == 'starting' then redis.call('HSET', KEYS[1], 'applied', '1') end
redis.call('HSET', KEYS[1], 'state', 'releasing', 'claimer', ARGV[2])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[5], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[4]), ARGV[6])
return {1, taken, rec(KEYS[1], KEYS[2]), ev}
`)

	// KEYS lease, hold, q, leases, lclaims, lrebuilt, lend; ARGV gen, me,
	// user. → 1 finished, 0 not. Within the window after a rebuild, the
	// finished generation is remembered (lend), so that a replica that
	// rebuilds later does not write the lease back.
	finishScript = leaseScript(`
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'releasing' then return 0 end
if redis.call('HGET', KEYS[1], 'claimer') ~= ARGV[2] then return 0 end
local w = redis.call('PTTL', KEYS[6])
if w > 0 then redis.call('SET', KEYS[7], ARGV[1], 'PX', w) end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('SREM', KEYS[4], ARGV[3])
redis.call('ZREM', KEYS[5], ARGV[3])
return 1
`)
)

// decodeRec parses recLua's array.
func decodeRec(v any) (car.LeaseRecord, bool, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 11 {
		return car.LeaseRecord{}, false, nil
	}
	str := func(i int) string {
		switch x := a[i].(type) {
		case string:
			return x
		case int64:
			return strconv.FormatInt(x, 10)
		}
		return ""
	}
	var r car.LeaseRecord
	gen, err := strconv.ParseUint(str(0), 10, 64)
	if err != nil {
		return r, false, fmt.Errorf("redisstore: a lease with generation %q", str(0))
	}
	r.Generation = gen
	if err := r.State.UnmarshalText([]byte(str(1))); err != nil {
		return r, false, fmt.Errorf("redisstore: %w", err)
	}
	r.Owner, r.Holder = str(2), str(3)
	if left, err := strconv.ParseInt(str(4), 10, 64); err == nil && r.Holder != "" {
		r.HoldLeft = time.Duration(left) * time.Millisecond
	}
	r.Applied = str(5) == "1" || r.State == car.LeaseStarting
	r.Ticket, _ = strconv.ParseUint(str(6), 10, 64)
	r.Reason = car.ReleaseReason(str(7))
	if req := str(8); req != "" {
		if err := json.Unmarshal([]byte(req), &r.Request); err != nil {
			return r, false, fmt.Errorf("redisstore: a lease's request: %w", err)
		}
	}
	r.UserId = r.Request.UserId
	r.ServerSession = str(9)
	return r, true, nil
}

// runPlain runs a script that decides nothing from a lease record.
func (l *leaseStore) runPlain(ctx context.Context, op string, sc *redis.Script, keys []string, args ...any) (any, error) {
	if l.s.ctx.Err() != nil {
		return nil, leaseErr(op, ErrClosed)
	}
	v, err := sc.Run(ctx, l.s.client, keys, args...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, leaseErr(op, err)
	}
	return v, nil
}

// event tells every replica of a change (after the script recorded it).
func (l *leaseStore) event(kind car.LeaseEventKind, user string, gen uint64) {
	ctx, cancel := context.WithTimeout(l.s.ctx, 2*time.Second)
	defer cancel()
	if err := l.s.broadcast(ctx, message{Kind: kindLease, Text: string(kind), User: user, Gen: gen}); err != nil {
		l.s.logger.Debug("redisstore: lease event not sent", "kind", string(kind), "err", err)
	}
}

func (l *leaseStore) Create(ctx context.Context, c car.CreateLease) (car.LeaseRecord, bool, error) {
	req, err := json.Marshal(c.Request)
	if err != nil {
		return car.LeaseRecord{}, false, fmt.Errorf("redisstore: %w", err)
	}
	u, k := c.Request.UserId, l.s.keys
	queue := "0"
	if c.Queue {
		queue = "1"
	}
	v, err := l.run(ctx, "create", createScript,
		[]string{k.lease(u), k.leaseHold(u), k.leaseGen(), k.queue(), k.queueSeq(), k.leaseSet()},
		u, req, l.s.replica, queue, c.QueueLimit, max(ms(c.Hold), 1))
	if err != nil {
		return car.LeaseRecord{}, false, err
	}
	a, _ := v.([]any)
	if len(a) == 0 {
		return car.LeaseRecord{}, false, leaseErr("create", errors.New("unexpected answer"))
	}
	switch a[0] {
	case int64(-1):
		return car.LeaseRecord{}, false, car.ErrQueueFull
	case int64(0):
		r, _, err := decodeRec(a[1])
		return r, false, err
	}
	r, _, err := decodeRec(a[1])
	if err == nil && r.State == car.LeaseQueued {
		l.event(car.LeaseEventQueue, u, r.Generation)
	}
	return r, err == nil, err
}

func (l *leaseStore) Get(ctx context.Context, userID string) (car.LeaseRecord, bool, error) {
	v, err := l.run(ctx, "get", readScript, []string{l.s.keys.lease(userID), l.s.keys.leaseHold(userID)})
	if err != nil || v == nil {
		return car.LeaseRecord{}, false, err
	}
	return decodeRec(v)
}

func (l *leaseStore) List(ctx context.Context) ([]car.LeaseRecord, error) {
	if l.s.ctx.Err() != nil {
		return nil, leaseErr("list", ErrClosed)
	}
	users, err := l.s.client.SMembers(ctx, l.s.keys.leaseSet()).Result()
	if err != nil {
		return nil, leaseErr("list", err)
	}
	out := make([]car.LeaseRecord, 0, len(users))
	for _, u := range users {
		r, ok, err := l.Get(ctx, u)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (l *leaseStore) Update(ctx context.Context, userID string, gen uint64, u car.LeaseUpdate) (car.LeaseRecord, error) {
	switch u.State {
	case car.LeaseStarting, car.LeaseActive, car.LeaseQueued:
	default:
		return car.LeaseRecord{}, fmt.Errorf("redisstore: Update: state %v cannot be set", u.State)
	}
	k := l.s.keys
	applied := "0"
	if u.Applied {
		applied = "1"
	}
	v, err := l.run(ctx, "update", updateScript,
		[]string{k.lease(userID), k.leaseHold(userID), k.queue(), k.queueSeq()},
		gen, u.State.String(), max(ms(u.Hold), 1), applied, u.ServerSession, l.s.replica, userID)
	if err != nil {
		return car.LeaseRecord{}, err
	}
	a, _ := v.([]any)
	if len(a) == 0 {
		return car.LeaseRecord{}, leaseErr("update", errors.New("unexpected answer"))
	}
	switch a[0] {
	case int64(-1):
		return car.LeaseRecord{}, car.ErrLeaseGone
	case int64(-2):
		r, _, _ := decodeRec(a[1])
		return r, car.ErrLeaseHeld
	}
	r, _, err := decodeRec(a[1])
	if len(a) > 2 {
		switch a[2] {
		case "admitted":
			l.event(car.LeaseEventAdmitted, userID, gen)
		case "queue":
			l.event(car.LeaseEventQueue, userID, gen)
		}
	}
	return r, err
}

func (l *leaseStore) Claim(ctx context.Context, c car.ClaimRequest) (car.Claim, error) {
	k := l.s.keys
	ifHolding := "0"
	if c.IfHolding {
		ifHolding = "1"
	}
	v, err := l.run(ctx, "claim", claimScript,
		[]string{k.lease(c.UserId), k.leaseHold(c.UserId), k.queue(), k.leaseGen(), k.leaseClaims()},
		c.Generation, l.s.replica, string(c.Reason), max(ms(c.TTL), 1), ifHolding, c.UserId)
	if err != nil {
		return car.Claim{}, err
	}
	a, _ := v.([]any)
	if len(a) == 0 {
		return car.Claim{}, leaseErr("claim", errors.New("unexpected answer"))
	}
	switch a[0] {
	case int64(0):
		return car.Claim{Gone: true}, nil
	case int64(4):
		l.s.logger.Error("redisstore: a lease's generation is past the counter: Redis lost its data (restarted empty?)", "user", c.UserId, "generation", c.Generation)
		return car.Claim{Lost: true}, nil
	case int64(2):
		r, _, err := decodeRec(a[1])
		return car.Claim{RetryIn: r.HoldLeft, Record: r}, err
	case int64(3):
		r, _, err := decodeRec(a[1])
		return car.Claim{NotHolding: true, Record: r}, err
	}
	r, _, err := decodeRec(a[2])
	if err != nil {
		return car.Claim{}, err
	}
	if len(a) > 3 && a[3] == "queue" {
		l.event(car.LeaseEventQueue, c.UserId, c.Generation)
	}
	return car.Claim{Won: true, TakenOver: a[1] == int64(1), Record: r}, nil
}

func (l *leaseStore) Finish(ctx context.Context, userID string, gen uint64) (bool, error) {
	k := l.s.keys
	v, err := l.run(ctx, "finish", finishScript,
		[]string{k.lease(userID), k.leaseHold(userID), k.queue(), k.leaseSet(), k.leaseClaims(), k.leaseRebuilt(), k.leaseEnded(userID)},
		gen, l.s.replica, userID)
	if err != nil {
		return false, err
	}
	if v != int64(1) {
		return false, nil
	}
	l.event(car.LeaseEventReleased, userID, gen)
	return true, nil
}

func (l *leaseStore) Watch(f func(car.LeaseEvent)) (stop func()) {
	l.mu.Lock()
	id := l.nextW
	l.nextW++
	l.watchers[id] = f
	if !l.handling {
		l.handling = true
		l.s.handle(kindLease, l.deliver)
	}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.watchers, id)
		l.mu.Unlock()
	}
}

func (l *leaseStore) deliver(m message) {
	ev := car.LeaseEvent{Kind: car.LeaseEventKind(m.Text), UserId: m.User, Generation: m.Gen, Replica: m.From}
	l.mu.Lock()
	ws := make([]func(car.LeaseEvent), 0, len(l.watchers))
	for _, f := range l.watchers {
		ws = append(ws, f)
	}
	l.mu.Unlock()
	for _, f := range ws {
		f(ev)
	}
}

// KEYS lclaims; ARGV limit. The users whose release claim ran out, by
// Redis's clock.
var orphansScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`)

// KEYS lclaims, lease; ARGV user. Drops the user from the claims index
// unless its lease is being released: the check and the ZREM are one
// script, so a claim made after Orphans read the record (a new generation
// of the user, released at once) keeps its entry.
var dropClaimScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'state') == 'releasing' then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[1])
`)

// Orphans implements car.OrphanLister: leases being released whose claim
// ran out.
func (l *leaseStore) Orphans(ctx context.Context, limit int) ([]car.LeaseRecord, error) {
	v, err := l.runPlain(ctx, "orphans", orphansScript, []string{l.s.keys.leaseClaims()}, limit)
	if err != nil {
		return nil, err
	}
	users, _ := v.([]any)
	var out []car.LeaseRecord
	for _, u := range users {
		user, _ := u.(string)
		r, ok, err := l.Get(ctx, user)
		if err != nil {
			return nil, err
		}
		switch {
		case !ok || r.State != car.LeaseReleasing:
			// finished meanwhile, or left over: drop it from the index,
			// unless a claim was made since the read (a failure leaves the
			// entry for the next sweep: it is only an index)
			_, _ = l.runPlain(ctx, "orphans", dropClaimScript,
				[]string{l.s.keys.leaseClaims(), l.s.keys.lease(user)}, user)
		case r.HoldLeft == 0:
			out = append(out, r)
		}
	}
	return out, nil
}
