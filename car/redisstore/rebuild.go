package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
)

// Data loss: Redis restarted empty, or failed over to a replica that had
// none of the data. The key lboot holds a mark, "<epoch>:<random>", that
// every replica learns before its first lease script. Every script that
// decides from a lease record (leaseScript) first compares the mark with
// the one the replica knows, atomically with the decision: a different or
// missing mark answers lostData, changing nothing, so that a lease of this
// replica that Redis forgot is never taken for one that ended. The replica
// then rebuilds (one at a time): it writes back the leases its manager
// holds (car.LeaseRebuilder), sets a new mark of the next epoch if nobody
// did yet, moves the generation counter to at least epoch << 32 and past
// every generation it holds, logs once at error level, and runs the script
// again. Every replica that knew the old mark rebuilds in turn, at its next
// lease script (the queue runner locks the head every poll interval), so
// the rebuilt state is the union of their books.

// lostData is a guarded script's answer when the mark differs.
const lostData = "lostdata"

// guardLua is the first statement of a guarded script: KEYS[#KEYS] is
// lboot, ARGV[#ARGV] the mark the replica knows.
const guardLua = `
if redis.call('GET', KEYS[#KEYS]) ~= ARGV[#ARGV] then return {'` + lostData + `'} end
`

// guardedScript is a lease script that checks the data mark first; run
// appends the mark's key and value.
type guardedScript struct{ *redis.Script }

func leaseScript(src string) guardedScript { return guardedScript{redis.NewScript(guardLua + src)} }

// rebuildChunk bounds the leases written back by one script call.
const rebuildChunk = 200

// rebuildWindow is how long after a rebuild a finished lease is
// remembered (lend:<user>), so that a replica rebuilding later does not
// write it back: every live replica rebuilds at its queue runner's next
// poll, well within it.
const rebuildWindow = 5 * time.Minute

var (
	// KEYS lboot; ARGV a new mark. → the mark.
	bootScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`)

	// KEYS lboot, lgen, qseq, leases, q, lclaims, lrebuilt, then lease,
	// hold, lend per record; ARGV new mark, me, generation floor, window
	// ms, then per record user, gen, state, applied (0|1), ticket, reason,
	// req, ss, hold ms. → {mark, status...}, status 1 written back, 0 the
	// user has a lease already (made since the loss, or written back by
	// another replica), 2 finished since the loss.
	restoreScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('SET', KEYS[7], '1', 'PX', ARGV[4])
local out = {redis.call('GET', KEYS[1])}
local me = ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = (#ARGV - 4) / 9
local gen = redis.call('GET', KEYS[2]) or '0'
if tonumber(ARGV[3]) > tonumber(gen) then gen = ARGV[3] end
local seq = redis.call('GET', KEYS[3]) or '0'
for i = 0, n - 1 do
  local a = 4 + i * 9
  if tonumber(ARGV[a + 2]) > tonumber(gen) then gen = ARGV[a + 2] end
  if tonumber(ARGV[a + 5]) > tonumber(seq) then seq = ARGV[a + 5] end
end
redis.call('SET', KEYS[2], gen)
redis.call('SET', KEYS[3], seq)
for i = 0, n - 1 do
  local a = 4 + i * 9
  local user, st, ticket = ARGV[a + 1], ARGV[a + 3], ARGV[a + 5]
  local lk, hk, ek = KEYS[8 + 3 * i], KEYS[9 + 3 * i], KEYS[10 + 3 * i]
  local ended = redis.call('GET', ek)
  if redis.call('EXISTS', lk) == 1 then
    out[#out + 1] = 0
  elseif ended and tonumber(ended) >= tonumber(ARGV[a + 2]) then
    out[#out + 1] = 2
  else
    if st == 'queued' and ticket == '0' then ticket = redis.call('INCR', KEYS[3]) end
    redis.call('HSET', lk, 'gen', ARGV[a + 2], 'state', st, 'owner', me, 'applied', ARGV[a + 4],
      'ticket', ticket, 'reason', ARGV[a + 6], 'req', ARGV[a + 7], 'ss', ARGV[a + 8])
    redis.call('SADD', KEYS[4], user)
    if st == 'queued' then redis.call('ZADD', KEYS[5], 'NX', ticket, user) end
    if st == 'starting' or st == 'releasing' then
      redis.call('SET', hk, me, 'PX', ARGV[a + 9])
    end
    if st == 'releasing' then
      redis.call('HSET', lk, 'claimer', me)
      redis.call('ZADD', KEYS[6], now + tonumber(ARGV[a + 9]), user)
    end
    out[#out + 1] = 1
  end
end
return out
`)
)

// run runs a guarded lease script: the data mark's key and value go last.
// If Redis lost its data, this replica rebuilds what it holds and the
// script runs once more.
func (l *leaseStore) run(ctx context.Context, op string, sc guardedScript, keys []string, args ...any) (any, error) {
	keys = append(keys[:len(keys):len(keys)], l.s.keys.leaseBoot())
	for try := 0; ; try++ {
		if l.s.ctx.Err() != nil {
			return nil, leaseErr(op, ErrClosed)
		}
		mark, err := l.mark(ctx)
		if err != nil {
			return nil, leaseErr(op, err)
		}
		v, err := sc.Run(ctx, l.s.client, keys, append(args[:len(args):len(args)], mark)...).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, leaseErr(op, err)
		}
		if a, ok := v.([]any); !ok || len(a) != 1 || a[0] != lostData {
			return v, nil
		}
		if try > 0 {
			return nil, leaseErr(op, errors.New("redis lost its data again while this replica rebuilt its leases"))
		}
		if err := l.rebuild(ctx, mark); err != nil {
			return nil, leaseErr(op, err)
		}
	}
}

// mark returns the data mark this replica knows, learning it (or setting
// the first one, epoch 0) on first use.
func (l *leaseStore) mark(ctx context.Context) (string, error) {
	l.mu.Lock()
	b := l.boot
	l.mu.Unlock()
	if b != "" {
		return b, nil
	}
	b, err := bootScript.Run(ctx, l.s.client, []string{l.s.keys.leaseBoot()}, "0:"+newBoot()).Text()
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	if l.boot == "" {
		l.boot = b
	}
	b = l.boot
	l.mu.Unlock()
	return b, nil
}

// markEpoch is the epoch of a mark, 0 if it has none.
func markEpoch(mark string) uint64 {
	e, _, _ := strings.Cut(mark, ":")
	n, _ := strconv.ParseUint(e, 10, 32)
	return n
}

// OnDataLoss implements car.LeaseRebuilder.
func (l *leaseStore) OnDataLoss(held func() []car.LeaseRecord) (stop func()) {
	l.mu.Lock()
	l.nextH++
	id := l.nextH
	l.held = held
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.nextH == id {
			l.held = nil
		}
		l.mu.Unlock()
	}
}

// rebuild writes back what this replica holds after Redis lost its data
// (the mark it knew was seen). A rebuild that another call of this replica
// already made for that mark is not repeated.
func (l *leaseStore) rebuild(ctx context.Context, seen string) error {
	l.rebuildMu.Lock()
	defer l.rebuildMu.Unlock()
	l.mu.Lock()
	known, held := l.boot, l.held
	l.mu.Unlock()
	if known != seen {
		return nil
	}
	var recs []car.LeaseRecord
	if held != nil {
		recs = held()
	}
	epoch := markEpoch(known)
	for _, r := range recs {
		epoch = max(epoch, r.Generation>>32)
	}
	epoch++
	fresh := strconv.FormatUint(epoch, 10) + ":" + newBoot()
	floor := strconv.FormatUint(epoch<<32, 10)
	k := l.s.keys
	var mark string
	var count [5]int // by car.LeaseState
	there, ended := 0, 0
	for first := true; first || len(recs) > 0; first = false {
		n := min(len(recs), rebuildChunk)
		keys := make([]string, 0, 7+3*n)
		keys = append(keys, k.leaseBoot(), k.leaseGen(), k.queueSeq(), k.leaseSet(), k.queue(), k.leaseClaims(), k.leaseRebuilt())
		args := make([]any, 0, 4+9*n)
		args = append(args, fresh, l.s.replica, floor, ms(rebuildWindow))
		for _, r := range recs[:n] {
			req, err := json.Marshal(r.Request)
			if err != nil {
				return fmt.Errorf("redisstore: rebuilding the lease of %q: %w", r.UserId, err)
			}
			applied := "0"
			if r.Applied {
				applied = "1"
			}
			keys = append(keys, k.lease(r.UserId), k.leaseHold(r.UserId), k.leaseEnded(r.UserId))
			args = append(args, r.UserId, strconv.FormatUint(r.Generation, 10), r.State.String(), applied,
				strconv.FormatUint(r.Ticket, 10), string(r.Reason), req, r.ServerSession, max(ms(r.HoldLeft), 1))
		}
		v, err := restoreScript.Run(ctx, l.s.client, keys, args...).Result()
		if err != nil {
			return fmt.Errorf("redisstore: rebuilding the leases after Redis lost its data: %w", err)
		}
		f, err := replyStrings(v)
		if err != nil || len(f) != 1+n || f[0] == "" {
			return &replyError{"restore", "bad reply"}
		}
		mark = f[0]
		for i, st := range f[1:] {
			switch st {
			case "1":
				if s := int(recs[i].State); s >= 0 && s < len(count) {
					count[s]++
				}
			case "2":
				ended++
			default:
				there++
			}
		}
		recs = recs[n:]
	}
	l.mu.Lock()
	l.boot = mark
	l.mu.Unlock()
	l.s.logger.Error("redisstore: Redis lost the leases and the queue (restarted empty, or failed over to a replica without the data); rebuilt the ones this replica holds",
		"active", count[car.LeaseActive], "queued", count[car.LeaseQueued], "starting", count[car.LeaseStarting],
		"releasing", count[car.LeaseReleasing], "already_there", there, "finished_since", ended, "generations_from", floor)
	l.event(car.LeaseEventQueue, "", 0) // the queue changed: every head runner looks again
	return nil
}

var _ car.LeaseRebuilder = (*leaseStore)(nil)
