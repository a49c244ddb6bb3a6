package redisstore

import (
	"strconv"

	"github.com/redis/go-redis/v9"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// The heartbeat session scripts. Each one is one atomic step; time comes
// from Redis (TIME, in milliseconds), never from a replica. Keys (under the
// project's hash tag, see keys.go and sessions.go):
//
//	hb:s:<id>   HASH  st (w waiting | c connected | d disconnected |
//	                  l lost: its owner stopped refreshing), join, resume
//	                  (nonce hashes, "" when none), owner, epoch, win and
//	                  idle (the session's timeline, ms), act (last activity),
//	                  times (idle thresholds reported since act), tld
//	                  (until when act, told by a Touch or a replaced
//	                  connection's handover and not yet reported back by
//	                  the owner, outlives the owner's older reports; see
//	                  told_later), exp (grace
//	                  end, not connected), seen (the client's last frame, as
//	                  reported), ref (the owner's last refresh)
//	hb:nl:<id>  LIST  keys of the kept notices, in order of first arrival
//	hb:nh:<id>  HASH  key → notice frame
//	hb:due      ZSET  id → next deadline: ref + owner TTL while connected,
//	                  else the earlier of exp and the next idle threshold
//	hb:boot     STRING a random mark; gone means Redis lost its data
//	hb:swept    STRING when a replica last swept
//	hb:hold     STRING until when owners keep their lease after an outage

var luaPrelude = `
local told_for = ` + strconv.FormatInt(heartbeat.StoreOwnerTTL.Milliseconds(), 10) + `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function next_due(st, act, times, idle, exp)
  local d = exp
  if idle > 0 then
    local i = act + (times + 1) * idle
    if i < d then d = i end
  end
  return d
end
-- told_later: an owner's report of activity act (a Refresh, its own
-- Detach, a ReportIdle) at now is older than a stored activity someone
-- else told (a Touch, a handover) that the owner has not caught up with:
-- the stored one and its count stay, so that a report made before the
-- owner heard of it does not bring the next idle threshold forward. The
-- owner reports the told activity back no earlier than it is stored; 5 ms
-- cover rounding. The rule holds for told_for (the owner lease) after the
-- tell, longer than a report can lag: an owner still reporting an older
-- activity then never got the message (lost on the bus), and its count
-- is the one that goes on.
local function told_later(tld, stored, act, now)
  return tld and tonumber(tld) > now and act < tonumber(stored) - 5
end
`

// KEYS: s, due, boot. ARGV: id, join, win, idle, newboot.
var scriptOpen = redis.NewScript(luaPrelude + `
local now = now_ms()
redis.call('SET', KEYS[3], ARGV[5], 'NX')
local win, idle = tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HGET', KEYS[1], 'st')
if not st then
  redis.call('HSET', KEYS[1], 'st', 'w', 'join', ARGV[2], 'resume', '', 'owner', '', 'epoch', 0,
    'win', win, 'idle', idle, 'act', now, 'times', 0, 'exp', now + win, 'seen', 0, 'ref', 0)
  redis.call('ZADD', KEYS[2], next_due('w', now, 0, idle, now + win), ARGV[1])
  return 1
end
redis.call('HSET', KEYS[1], 'join', ARGV[2])
if st ~= 'c' then
  local h = redis.call('HMGET', KEYS[1], 'act', 'times', 'idle')
  redis.call('HSET', KEYS[1], 'exp', now + win)
  redis.call('ZADD', KEYS[2], next_due(st, tonumber(h[1]), tonumber(h[2]), tonumber(h[3]), now + win), ARGV[1])
end
return 1
`)

// KEYS: s, due, nl, nh, boot, swept. ARGV: id, used, resume, me, ttl,
// newboot.
// Reply: {"unknown"} | {"used"} | {"ok", boot, resumed, epoch, prevOwner,
// prevEpoch, activityAge, times, win, idle, frames...}.
var scriptClaim = redis.NewScript(luaPrelude + `
local now = now_ms()
redis.call('SET', KEYS[5], ARGV[6], 'NX')
redis.call('SET', KEYS[6], now, 'NX')
local boot = redis.call('GET', KEYS[5])
local h = redis.call('HMGET', KEYS[1], 'st', 'join', 'resume', 'owner', 'epoch', 'act', 'times', 'win', 'idle')
if not h[1] then return {'unknown'} end
local join = h[2] and h[2] ~= '' and h[2] == ARGV[2]
local res = h[3] and h[3] ~= '' and h[3] == ARGV[2]
if not join and not res then return {'used'} end
local prev, pepoch = '', 0
if h[1] == 'c' then prev, pepoch = h[4], tonumber(h[5]) end
local epoch = tonumber(h[5]) + 1
if join then redis.call('HSET', KEYS[1], 'join', '') end
redis.call('HSET', KEYS[1], 'st', 'c', 'resume', ARGV[3], 'owner', ARGV[4], 'epoch', epoch, 'ref', now, 'seen', now, 'tld', 0)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[1])
local resumed = 0
if h[1] ~= 'w' then resumed = 1 end
local out = {'ok', boot, resumed, epoch, prev, pepoch, math.max(0, now - tonumber(h[6])), tonumber(h[7]), tonumber(h[8]), tonumber(h[9])}
local ks = redis.call('LRANGE', KEYS[3], 0, -1)
for _, k in ipairs(ks) do
  local f = redis.call('HGET', KEYS[4], k)
  if f then out[#out + 1] = f end
end
redis.call('DEL', KEYS[3], KEYS[4])
return out
`)

// KEYS: s, due. ARGV: id, me, epoch, seenAge, grace, actAge, times, revoke,
// known. Reply: {"ok"} | {"touch", owner} (a newer epoch holds the session
// and the old one's activity, not known to the store, was later than the
// recorded one: owner, "" unless connected, is to be told).
var scriptDetach = redis.NewScript(luaPrelude + `
local now = now_ms()
local h = redis.call('HMGET', KEYS[1], 'st', 'owner', 'epoch', 'idle', 'act', 'exp', 'tld', 'times')
if not h[1] then return {'ok'} end
if tonumber(h[3]) > tonumber(ARGV[3]) then
  if ARGV[9] == '1' then return {'ok'} end
  local act = now - tonumber(ARGV[6])
  if act <= tonumber(h[5]) then return {'ok'} end
  redis.call('HSET', KEYS[1], 'act', act, 'times', 0, 'tld', now + told_for)
  if h[1] == 'c' then return {'touch', h[2]} end
  redis.call('ZADD', KEYS[2], next_due(h[1], act, 0, tonumber(h[4]), tonumber(h[6])), ARGV[1])
  return {'touch', ''}
end
if h[1] ~= 'c' or h[2] ~= ARGV[2] or h[3] ~= ARGV[3] then return {'ok'} end
local seen = now - tonumber(ARGV[4])
local exp = math.max(now, seen + tonumber(ARGV[5]))
local act, times = now - tonumber(ARGV[6]), tonumber(ARGV[7])
if told_later(h[7], h[5], act, now) then
  act, times = tonumber(h[5]), tonumber(h[8])
  redis.call('HSET', KEYS[1], 'st', 'd', 'seen', seen, 'exp', exp)
else
  redis.call('HSET', KEYS[1], 'st', 'd', 'seen', seen, 'exp', exp, 'act', act, 'times', times, 'tld', 0)
end
if ARGV[8] == '1' then redis.call('HSET', KEYS[1], 'resume', '') end
redis.call('ZADD', KEYS[2], next_due('d', act, times, tonumber(h[4]), exp), ARGV[1])
return {'ok'}
`)

// KEYS: due, boot, s1..sn. ARGV: me, ttl, knownBoot, newBoot, then per held
// connection id, epoch, resume, seenAge, actAge, times, win, idle.
// Reply: {boot, lost (0|1), status...} with status 0 ok, 1 revived, 2
// gone, 3 replaced.
var scriptRefresh = redis.NewScript(luaPrelude + `
local now = now_ms()
local ttl = tonumber(ARGV[2])
local b = redis.call('GET', KEYS[2])
local lost = false
if not b then
  b = ARGV[4]
  redis.call('SET', KEYS[2], b)
  lost = ARGV[3] ~= ''
elseif ARGV[3] ~= '' and b ~= ARGV[3] then
  lost = true
end
local out = {b, 0}
if lost then out[2] = 1 end
local n = (#ARGV - 4) / 8
for i = 0, n - 1 do
  local a = 4 + i * 8
  local id, epoch = ARGV[a + 1], ARGV[a + 2]
  local key = KEYS[3 + i]
  local h = redis.call('HMGET', key, 'st', 'owner', 'epoch', 'act', 'tld')
  local status = 0
  if not h[1] then
    if lost then
      redis.call('HSET', key, 'st', 'c', 'join', '', 'resume', ARGV[a + 3], 'owner', ARGV[1], 'epoch', epoch,
        'win', ARGV[a + 7], 'idle', ARGV[a + 8], 'act', now - tonumber(ARGV[a + 5]), 'times', ARGV[a + 6],
        'exp', 0, 'seen', now - tonumber(ARGV[a + 4]), 'ref', now)
      redis.call('ZADD', KEYS[1], now + ttl, id)
    else
      status = 2
    end
  elseif h[2] ~= ARGV[1] or h[3] ~= epoch then
    status = 3
  elseif h[1] == 'c' or h[1] == 'l' then
    if h[1] == 'l' then status = 1 end
    local act = now - tonumber(ARGV[a + 5])
    if told_later(h[5], h[4], act, now) then
      redis.call('HSET', key, 'st', 'c', 'ref', now, 'seen', now - tonumber(ARGV[a + 4]))
    else
      redis.call('HSET', key, 'st', 'c', 'ref', now, 'seen', now - tonumber(ARGV[a + 4]),
        'act', act, 'times', ARGV[a + 6], 'tld', 0)
    end
    redis.call('ZADD', KEYS[1], now + ttl, id)
  end
  out[#out + 1] = status
end
return out
`)

// KEYS: s. ARGV: me, epoch, actAge, times. Reply: 1 (recorded) | 0 (the
// connection is not the session's: replaced, lost, or the session gone).
var scriptReportIdle = redis.NewScript(luaPrelude + `
local h = redis.call('HMGET', KEYS[1], 'st', 'owner', 'epoch', 'act', 'tld')
if h[1] ~= 'c' or h[2] ~= ARGV[1] or h[3] ~= ARGV[2] then return 0 end
local now = now_ms()
local act = now - tonumber(ARGV[3])
if not told_later(h[5], h[4], act, now) then redis.call('HSET', KEYS[1], 'act', act, 'times', ARGV[4], 'tld', 0) end
return 1
`)

// KEYS: s, due. ARGV: id. Reply: {"unknown"} | {"ok", owner, epoch} (owner
// "" unless connected).
var scriptTouch = redis.NewScript(luaPrelude + `
local now = now_ms()
local h = redis.call('HMGET', KEYS[1], 'st', 'owner', 'epoch', 'idle', 'exp')
if not h[1] then return {'unknown'} end
redis.call('HSET', KEYS[1], 'act', now, 'times', 0, 'tld', now + told_for)
if h[1] == 'c' then return {'ok', h[2], tonumber(h[3])} end
redis.call('ZADD', KEYS[2], next_due(h[1], now, 0, tonumber(h[4]), tonumber(h[5])), ARGV[1])
return {'ok', '', 0}
`)

// KEYS: s, nl, nh. ARGV: key, frame, max, gone owner, gone epoch (""
// and 0 at first; then the connection the notice was routed to, whose
// replica nobody listens for: keep the notice if that connection is still
// the session's, route it again if a claim made another one since).
// Reply: {"unknown"} | {"full"} | {"kept"} | {"route", owner, epoch}.
var scriptNotify = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'st', 'owner', 'epoch')
if not h[1] then return {'unknown'} end
if h[1] == 'c' and (h[2] ~= ARGV[4] or h[3] ~= ARGV[5]) then return {'route', h[2], tonumber(h[3])} end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  return {'kept'}
end
if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[3]) then return {'full'} end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return {'kept'}
`)

// KEYS: s, due, nl, nh. ARGV: id. Reply: {"unknown"} | {state, owner}.
var scriptEnd = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'st', 'owner')
if not h[1] then return {'unknown'} end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[1])
return {h[1], h[2]}
`)

// The first step of a sweep. KEYS: due, swept, hold. ARGV: limit, ttl.
// Reply: the ids due now. After a gap longer than the owner TTL (nobody
// could sweep: Redis was unreachable), owners keep their lease for one
// more TTL (hb:hold) so that they can refresh before they count as gone.
var scriptSweepDue = redis.NewScript(luaPrelude + `
local now = now_ms()
local ttl = tonumber(ARGV[2])
local last = redis.call('GET', KEYS[2])
if last and now - tonumber(last) > ttl then
  redis.call('SET', KEYS[3], now + ttl, 'PX', 2 * ttl)
end
redis.call('SET', KEYS[2], now)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`)

// The second step: takes the deadlines of the given sessions that are still
// due. KEYS: due, hold, then s, nl, nh per id. ARGV: ttl, limit, ids...
// Reply: 5 fields per fired deadline: kind ("idle" | "lost" | "expired"),
// id, at, then times and 0 for idle, lastSeen and expiresAt for lost, 0 and
// 0 for expired.
var scriptSweepTake = redis.NewScript(luaPrelude + `
local now = now_ms()
local ttl, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local hold = tonumber(redis.call('GET', KEYS[2]) or '0')
local out = {}
local count = 0
local function emit(kind, id, at, x, y)
  out[#out + 1] = kind
  out[#out + 1] = id
  out[#out + 1] = at
  out[#out + 1] = x
  out[#out + 1] = y
  count = count + 1
end
for i = 3, #ARGV do
  local id = ARGV[i]
  local k = 3 + (i - 3) * 3
  local sk, nl, nh = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= now and count < limit then
    local h = redis.call('HMGET', sk, 'st', 'act', 'times', 'idle', 'exp', 'seen', 'win')
    if not h[1] then
      redis.call('ZREM', KEYS[1], id)
    else
      local st, act, times, idle, exp = h[1], tonumber(h[2]), tonumber(h[3]), tonumber(h[4]), tonumber(h[5])
      local held = false
      if st == 'c' then
        if now < hold then
          redis.call('HSET', sk, 'ref', now)
          redis.call('ZADD', KEYS[1], now + ttl, id)
          held = true
        else
          local seen = tonumber(h[6])
          exp = math.max(now, seen + tonumber(h[7]))
          st = 'l'
          redis.call('HSET', sk, 'st', 'l', 'exp', exp)
          emit('lost', id, now, seen, exp)
        end
      end
      if not held then
        if idle > 0 then
          local n = math.floor((now - act) / idle)
          while times < n and count < limit do
            times = times + 1
            emit('idle', id, act + times * idle, times, 0)
          end
          redis.call('HSET', sk, 'times', times)
        end
        if now >= exp then
          redis.call('DEL', sk, nl, nh)
          redis.call('ZREM', KEYS[1], id)
          emit('expired', id, now, 0, 0)
        else
          redis.call('ZADD', KEYS[1], next_due(st, act, times, idle, exp), id)
        end
      end
    end
  end
end
return out
`)
