package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
)

// The queue of a project: the sorted set q (user → ticket from qseq, so
// order is by arrival across replicas, never by a replica's clock), and the
// head lock qhead (SET PX: one replica at a time admits the head; when it
// dies the lock runs out on Redis's clock and any replica takes it).

var (
	// KEYS qhead, q; ARGV me, ttl ms. → {-1} locked elsewhere, {0} empty,
	// {1, head user}.
	lockHeadScript = leaseScript(`
local h = redis.call('GET', KEYS[1])
if h and h ~= ARGV[1] then return {-1} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local first = redis.call('ZRANGE', KEYS[2], 0, 0)
if #first == 0 then return {0} end
return {1, first[1]}
`)

	// KEYS lease, hold, q; ARGV user. The head's record; a head left
	// starting by an admitter whose hold ran out goes back to queued; a
	// queue member without a lease leaves the queue. → rec or false.
	headScript = leaseScript(recLua + `
local st = redis.call('HGET', KEYS[1], 'state')
if not st then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return false
end
if st == 'starting' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'queued')
end
return rec(KEYS[1], KEYS[2])
`)

	// KEYS qhead; ARGV me. Compare and delete.
	unlockHeadScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
)

func (l *leaseStore) Positions(ctx context.Context, userIDs []string) ([]int, error) {
	if l.s.ctx.Err() != nil {
		return nil, leaseErr("positions", ErrClosed)
	}
	pipe := l.s.client.Pipeline()
	cmds := make([]*redis.IntCmd, len(userIDs))
	for i, u := range userIDs {
		cmds[i] = pipe.ZRank(ctx, l.s.keys.queue(), u)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, leaseErr("positions", err)
	}
	out := make([]int, len(userIDs))
	for i, c := range cmds {
		if r, err := c.Result(); err == nil {
			out[i] = int(r) + 1
		}
	}
	return out, nil
}

func (l *leaseStore) QueueLen(ctx context.Context) (int, error) {
	if l.s.ctx.Err() != nil {
		return 0, leaseErr("queue length", ErrClosed)
	}
	n, err := l.s.client.ZCard(ctx, l.s.keys.queue()).Result()
	if err != nil {
		return 0, leaseErr("queue length", err)
	}
	return int(n), nil
}

func (l *leaseStore) LockHead(ctx context.Context, ttl time.Duration) (car.LeaseRecord, bool, error) {
	k := l.s.keys
	v, err := l.run(ctx, "lock head", lockHeadScript, []string{k.queueHead(), k.queue()}, l.s.replica, max(ms(ttl), 1))
	if err != nil {
		return car.LeaseRecord{}, false, err
	}
	a, _ := v.([]any)
	if len(a) == 0 {
		return car.LeaseRecord{}, false, leaseErr("lock head", errors.New("unexpected answer"))
	}
	switch a[0] {
	case int64(-1):
		return car.LeaseRecord{}, false, car.ErrHeadLocked
	case int64(0):
		return car.LeaseRecord{}, false, nil
	}
	user, _ := a[1].(string)
	v, err = l.run(ctx, "lock head", headScript, []string{k.lease(user), k.leaseHold(user), k.queue()}, user)
	if err != nil || v == nil {
		return car.LeaseRecord{}, false, err
	}
	r, ok, err := decodeRec(v)
	return r, ok && err == nil, err
}

func (l *leaseStore) UnlockHead(ctx context.Context) error {
	if _, err := l.runPlain(ctx, "unlock head", unlockHeadScript, []string{l.s.keys.queueHead()}, l.s.replica); err != nil {
		return err
	}
	return nil
}
