/**
 * Lua sources of the Redis store, one constant per SPI command.
 *
 * Conventions shared by every script:
 * - Time is the server's: `redis.call('TIME')`, in integer microseconds (`now`). Redis 7 replicates
 *   script effects, so reading TIME before a write is allowed.
 * - State is integers only (microseconds, counts), all below 10^16, which Redis writes without an
 *   exponent; members built by concatenation go through `string.format('%d', x)`.
 * - Every script answers integers only (a Lua number leaving a script is truncated to an integer,
 *   so no fractional value is ever returned). A decision is `{remaining, resetAfterUs, t}`:
 *   `t = 0` admitted now, `t > 0` admitted after a delay of `t` µs (a reservation), `t < 0`
 *   refused with `retryAfter = −t` µs, `t = NEVER` refused for good. Three integers keep the reply
 *   (and its parsing on the hot path) small. An admitted window take adds a fourth element, its
 *   `ref` (see `StoreDecision.ref`): the fixed window's start (ms), the sliding entry's id.
 * - Every key written gets its expiry in the same script; a hit never pushes a window's expiry
 *   beyond the moment its state stops mattering.
 *
 * @internal
 */

/**
 * The `t` of a decision refused for good (a cost above the capacity): −2^53 + 1.
 *
 * @internal
 */
export const NEVER = -9007199254740991

const prelude = `
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
`

/**
 * GCRA take-or-reserve. KEYS[1]: TAT (µs). ARGV: interval per token (µs, may be fractional),
 * burst, cost, max wait (µs). The stored TAT is rounded up to a whole µs (never admits more).
 *
 * @internal
 */
export const tokenBucketTake = `${prelude}
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local maxWait = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local burstT = burst * T
if cost > burst then
  local r = math.floor((now + burstT - tat) / T + 0.001)
  if r < 0 then r = 0 elseif r > burst then r = burst end
  return {r, math.ceil(tat - now), ${NEVER}}
end
local nxt = tat + cost * T
local wait = nxt - burstT - now
if wait <= 0.001 or wait <= maxWait then
  nxt = math.ceil(nxt)
  local ttl = math.ceil((nxt - now) / 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', KEYS[1], nxt, 'PX', ttl)
  local r = math.floor((now + burstT - nxt) / T + 0.001)
  if r < 0 then r = 0 end
  if wait <= 0.001 then return {r, nxt - now, 0} end
  return {r, nxt - now, math.ceil(wait)}
end
local r = math.floor((now + burstT - tat) / T + 0.001)
if r < 0 then r = 0 elseif r > burst then r = burst end
return {r, math.ceil(tat - now), -math.ceil(wait)}
`

/**
 * GCRA peek (consumes nothing). KEYS[1]: TAT. ARGV: interval (µs), burst, and optionally the cost
 * asked about (default 1): whether it would be admitted now, and the wait until it would.
 *
 * @internal
 */
export const tokenBucketPeek = `${prelude}
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3]) or 1
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local burstT = burst * T
local r = math.floor((now + burstT - tat) / T + 0.001)
if r < 0 then r = 0 elseif r > burst then r = burst end
if cost > burst then return {r, math.ceil(tat - now), ${NEVER}} end
local wait = tat + cost * T - burstT - now
if wait <= 0.001 then return {r, math.ceil(tat - now), 0} end
return {r, math.ceil(tat - now), -math.ceil(wait)}
`

const slidingCommon = `${prelude}
local function s(x) return string.format('%d', x) end
local z = KEYS[1]
local h = KEYS[2]
local win = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cutoff = now - win
local function c(m) return tonumber(string.match(m, ':(%d+)$')) end
`

/**
 * Exact sliding window take. KEYS[1]: ZSET of admitted entries (score = time µs, member =
 * `time:seq:cost`), KEYS[2]: hash {t = total of the entries the ZSET holds, s = sequence}. ARGV:
 * window (µs), limit, cost. An entry stamped `e` counts while `now < e + window`. An admission
 * answers the entry's id `time:seq` as its ref (the member without its cost, which `adjust` may
 * change; `seq` is unique per key, so the id names one entry).
 *
 * @internal
 */
export const slidingWindowTake = `${slidingCommon}
local cost = tonumber(ARGV[3])
local total = tonumber(redis.call('HGET', h, 't'))
local expired = redis.call('ZRANGEBYSCORE', z, '-inf', s(cutoff))
local changed = false
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', z, '-inf', s(cutoff))
  changed = true
end
if total == nil then
  total = 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do total = total + c(m) end
  changed = true
else
  for _, m in ipairs(expired) do total = total - c(m) end
end
if cost <= limit and total + cost <= limit then
  local seq = redis.call('HINCRBY', h, 's', 1)
  local id = s(now) .. ':' .. s(seq)
  redis.call('ZADD', z, s(now), id .. ':' .. s(cost))
  total = total + cost
  redis.call('HSET', h, 't', s(total))
  local ttl = s(math.ceil(win / 1000))
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', h, ttl)
  return {limit - total, win, 0, id}
end
local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
if changed then
  if #entries == 0 then
    redis.call('DEL', h)
  else
    redis.call('HSET', h, 't', s(total))
    if redis.call('PTTL', h) < 0 then
      local pt = redis.call('PTTL', z)
      if pt < 1 then pt = 1 end
      redis.call('PEXPIRE', h, s(pt))
    end
  end
end
local reset = 0
if #entries > 0 then reset = tonumber(entries[#entries]) + win - now end
local remaining = limit - total
if remaining < 0 then remaining = 0 end
if cost > limit then return {remaining, reset, ${NEVER}} end
local need = total + cost - limit
local freed = 0
local retry = -1
for i = 1, #entries, 2 do
  freed = freed + c(entries[i])
  if freed >= need then
    retry = tonumber(entries[i + 1]) + win - now
    break
  end
end
if retry < 1 then retry = 1 end
return {remaining, reset, -retry}
`

/**
 * Exact sliding window peek (read-only). KEYS and ARGV as the take, the cost optional (default 1).
 *
 * @internal
 */
export const slidingWindowPeek = `${slidingCommon}
local cost = tonumber(ARGV[3]) or 1
local entries = redis.call('ZRANGEBYSCORE', z, '(' .. s(cutoff), '+inf', 'WITHSCORES')
local total = 0
for i = 1, #entries, 2 do total = total + c(entries[i]) end
local reset = 0
if #entries > 0 then reset = tonumber(entries[#entries]) + win - now end
local remaining = limit - total
if remaining < 0 then remaining = 0 end
if cost <= limit and total + cost <= limit then return {remaining, reset, 0} end
if cost > limit then return {remaining, reset, ${NEVER}} end
local need = total + cost - limit
local freed = 0
local retry = -1
for i = 1, #entries, 2 do
  freed = freed + c(entries[i])
  if freed >= need then
    retry = tonumber(entries[i + 1]) + win - now
    break
  end
end
if retry < 1 then retry = 1 end
return {remaining, reset, -retry}
`

const fixedCommon = `${prelude}
local k = KEYS[1]
local win = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local nowMs = math.floor(now / 1000)
local endMs = nowMs - nowMs % win + win
local toEnd = endMs * 1000 - now
-- The key lives at least to the window's end. The expiry is relative (PEXPIRE): the server counts
-- it from its clock when the call runs. An absolute PEXPIREAT computed from the script's now can
-- be in the past by then (a batch of many calls runs for more than a millisecond), and Redis
-- 7.0 deletes such a key at once: the window's count would be lost and later calls of the same
-- batch, still in that window, admitted again.
local function expireAtEnd()
  local left = endMs - nowMs
  local ttl = redis.call('PTTL', k)
  if ttl < 0 or ttl < left then redis.call('PEXPIRE', k, left) end
end
`

/**
 * Fixed window take. KEYS[1]: a hash holding, per window length `L` (ms), `wL` = the end of the
 * window counted (ms) and `nL` = its count. A `wL` that is not the current window's end is a past
 * window's and counts as empty, so expiry only frees memory and never decides a count (a window's
 * last millisecond cannot over-admit). Each length keeps its own count: while a limiter's window is
 * being changed (a rolling deploy), processes on the old and the new length never reset each
 * other's count, each enforces its own limit. The key lives at least to the latest end of the
 * windows it holds (`PTTL`, then a relative `PEXPIRE`: see `expireAtEnd`; `PEXPIRETIME` would need
 * Redis 7). The first take of a window drops the counters of other lengths whose windows are over,
 * so a retired length leaves nothing behind. A refusal writes nothing. ARGV: window (ms), limit,
 * cost. An admission answers the window's start (ms) as its ref.
 *
 * @internal
 */
export const fixedWindowTake = `${fixedCommon}
local cost = tonumber(ARGV[3])
local wf = 'w' .. ARGV[1]
local nf = 'n' .. ARGV[1]
local st = redis.call('HMGET', k, wf, nf)
local count = 0
if tonumber(st[1]) == endMs then count = tonumber(st[2]) or 0 end
if cost <= limit and count + cost <= limit then
  if count == 0 then
    -- a new window: drop the counters of other lengths whose windows are over (retired lengths)
    local h = redis.call('HGETALL', k)
    for i = 1, #h, 2 do
      local f = h[i]
      if f ~= wf and string.sub(f, 1, 1) == 'w' and tonumber(h[i + 1]) <= nowMs then
        redis.call('HDEL', k, f, 'n' .. string.sub(f, 2))
      end
    end
    redis.call('HSET', k, wf, endMs, nf, cost)
    expireAtEnd()
  else
    redis.call('HINCRBY', k, nf, cost)
  end
  return {limit - count - cost, toEnd, 0, endMs - win}
end
local r = limit - count
if r < 0 then r = 0 end
if cost > limit then return {r, toEnd, ${NEVER}} end
return {r, toEnd, -toEnd}
`

/**
 * Fixed window peek (read-only). ARGV as the take, the cost optional (default 1).
 *
 * @internal
 */
export const fixedWindowPeek = `${fixedCommon}
local cost = tonumber(ARGV[3]) or 1
local st = redis.call('HMGET', k, 'w' .. ARGV[1], 'n' .. ARGV[1])
local count = 0
if tonumber(st[1]) == endMs then count = tonumber(st[2]) or 0 end
local remaining = limit - count
if remaining < 0 then remaining = 0 end
if cost <= limit and count + cost <= limit then return {remaining, toEnd, 0} end
if cost > limit then return {remaining, toEnd, ${NEVER}} end
return {remaining, toEnd, -toEnd}
`

const slotCommon = `${prelude}
local function s(x) return string.format('%d', x) end
local z = KEYS[1]
redis.call('ZREMRANGEBYSCORE', z, '-inf', s(now))
local function expireAtLast()
  local last = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
  if #last > 0 then
    local ttl = math.ceil((tonumber(last[2]) - now) / 1000)
    if ttl < 1 then ttl = 1 end
    redis.call('PEXPIRE', z, s(ttl))
  end
end
`

/**
 * Slot acquire. KEYS[1]: ZSET holder -> lease expiry (µs). ARGV: holder, limit, lease (µs).
 * Answers `{acquired, active, retryAfterUs}`.
 *
 * @internal
 */
export const slotAcquire = `${slotCommon}
local holder = ARGV[1]
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local has = redis.call('ZSCORE', z, holder)
local active = redis.call('ZCARD', z)
if has or active < limit then
  redis.call('ZADD', z, s(now + lease), holder)
  if not has then active = active + 1 end
  expireAtLast()
  return {1, active, 0}
end
local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
if #first == 0 then return {0, active, -1} end
return {0, active, tonumber(first[2]) - now}
`

/**
 * Slot renew: pushes a live lease; never re-creates a lost one. ARGV: holder, lease (µs).
 *
 * @internal
 */
export const slotRenew = `${slotCommon}
local holder = ARGV[1]
local lease = tonumber(ARGV[2])
if redis.call('ZSCORE', z, holder) then
  redis.call('ZADD', z, 'XX', s(now + lease), holder)
  expireAtLast()
  return 1
end
return 0
`

/**
 * Slot release: 1 when the holder had a live lease. ARGV: holder, and optionally a channel on
 * which the slot's key is published when a lease was freed (waiters of other processes wake up).
 *
 * @internal
 */
export const slotRelease = `${slotCommon}
local n = redis.call('ZREM', z, ARGV[1])
if n == 1 and ARGV[2] then redis.call('PUBLISH', ARGV[2], z) end
return n
`

/**
 * Slot peek (read-only). ARGV: limit. Answers a decision.
 *
 * @internal
 */
export const slotPeek = `${prelude}
local function s(x) return string.format('%d', x) end
local z = KEYS[1]
local limit = tonumber(ARGV[1])
local live = redis.call('ZRANGEBYSCORE', z, '(' .. s(now), '+inf', 'WITHSCORES')
local active = #live / 2
local remaining = limit - active
if remaining < 0 then remaining = 0 end
local reset = 0
if active > 0 then reset = tonumber(live[#live]) - now end
if active < limit then return {remaining, reset, 0} end
if active == 0 then return {remaining, reset, ${NEVER}} end
return {remaining, reset, -(tonumber(live[2]) - now)}
`

const bodyOf = (source: string): string => {
  if (!source.startsWith(prelude)) throw new Error("a script run inside another starts with the prelude")
  return source.slice(prelude.length)
}

/** A script's body as a Lua function of its own `KEYS` and `ARGV` (run inside another script). */
const functionOf = (source: string): string => `function(KEYS, ARGV)\n${bodyOf(source)}\nend`

/**
 * Several rate takes as one unit, all-or-nothing (`CompositeDecision`), at one server instant.
 *
 * KEYS: every take's keys, in order (token bucket: TAT; sliding window: ZSET, hash; fixed window:
 * hash). ARGV[1]: the number of takes, then per take its kind (`t`, `s`, `f`) and the arguments
 * of its single-take script (token bucket: interval, burst, cost, max wait; windows: window,
 * limit, cost).
 *
 * 1. Check, writing nothing: every take is decided from the state its single script would read
 *    (the same arithmetic), a take of a key already taken earlier in the call seeing that
 *    earlier charge. Windows cannot reserve, so a call holding one judges its buckets with no
 *    wait; a call of buckets only judges each with the smallest max wait of the call (the call
 *    then waits for the slowest: `D`, the largest wait). A bucket named several times is charged
 *    the sum of their costs at one instant: the take that brings it above the burst never fits
 *    (`NEVER`).
 * 2. When every take passes and none waits, each runs its own single-take script, in order: the
 *    state written and the decisions answered are exactly those of the single takes (refs
 *    included). When the call waits (`D > 0`, buckets only), every bucket is booked at the
 *    instant the caller proceeds, `now + D` (`D` rounded up to a whole µs), each take in order:
 *    `next = max(tat, now + D) + cost·T`, rounded up (a take of cost 0 books nothing); its
 *    decision has `t = D` and its remaining and reset from that `next`. When one take refuses,
 *    nothing at all is written (not even the removal of expired sliding entries).
 *
 * Answers `{admitted (1/0), delayUs, d1, …, dn}`, each `di` a decision as the single scripts
 * answer it. On a refusal a take that fits answers `t = 0` with its remaining unchanged, a take
 * that does not its own retry (`t < 0`, or `NEVER`).
 *
 * @internal
 */
export const takeAll = `${prelude}
local function s(x) return string.format('%d', x) end
local function c(m) return tonumber(string.match(m, ':(%d+)$')) end
local take = {
t = ${functionOf(tokenBucketTake)},
s = ${functionOf(slidingWindowTake)},
f = ${functionOf(fixedWindowTake)}
}
local n = tonumber(ARGV[1])
local kinds, keys, args = {}, {}, {}
local ki, ai = 0, 1
local buckets = true
local maxWait = nil
for i = 1, n do
  local kind = ARGV[ai + 1]
  local nk, na = 1, 3
  if kind == 's' then nk = 2 elseif kind == 't' then na = 4 end
  local k, a = {}, {}
  for j = 1, nk do k[j] = KEYS[ki + j] end
  for j = 1, na do a[j] = ARGV[ai + 1 + j] end
  ki = ki + nk
  ai = ai + 1 + na
  kinds[i], keys[i], args[i] = kind, k, a
  if kind == 't' then
    local w = tonumber(a[4])
    if maxWait == nil or w < maxWait then maxWait = w end
  else
    buckets = false
  end
end
if not buckets or maxWait == nil then maxWait = 0 end
-- 1. check
local tats, spent, counts, totals = {}, {}, {}, {}
local out = {}
local admitted = true
local wait0 = 0
for i = 1, n do
  local kind, k, a = kinds[i], keys[i], args[i]
  if kind == 't' then
    local T = tonumber(a[1])
    local burst = tonumber(a[2])
    local cost = tonumber(a[3])
    local tat = tats[k[1]]
    if tat == nil then
      tat = tonumber(redis.call('GET', k[1])) or now
      if tat < now then tat = now end
    end
    local burstT = burst * T
    local r = math.floor((now + burstT - tat) / T + 0.001)
    if r < 0 then r = 0 elseif r > burst then r = burst end
    local nxt = tat + cost * T
    local wait = nxt - burstT - now
    local sum = (spent[k[1]] or 0) + cost
    if cost > burst or sum > burst then
      -- the bucket's takes of the call are all charged at the instant the caller proceeds
      out[i] = {r, math.ceil(tat - now), ${NEVER}}
    elseif wait <= 0.001 or wait <= maxWait then
      tats[k[1]] = math.ceil(nxt)
      spent[k[1]] = sum
      if wait > 0.001 and wait > wait0 then wait0 = wait end
      out[i] = {r, math.ceil(tat - now), 0}
    else
      out[i] = {r, math.ceil(tat - now), -math.ceil(wait)}
    end
  elseif kind == 'f' then
    local win = tonumber(a[1])
    local limit = tonumber(a[2])
    local cost = tonumber(a[3])
    local nowMs = math.floor(now / 1000)
    local endMs = nowMs - nowMs % win + win
    local toEnd = endMs * 1000 - now
    local id = k[1] .. ' ' .. a[1]
    local count = counts[id]
    if count == nil then
      local st = redis.call('HMGET', k[1], 'w' .. a[1], 'n' .. a[1])
      count = 0
      if tonumber(st[1]) == endMs then count = tonumber(st[2]) or 0 end
    end
    local r = limit - count
    if r < 0 then r = 0 end
    if cost <= limit and count + cost <= limit then
      counts[id] = count + cost
      out[i] = {r, toEnd, 0}
    elseif cost > limit then
      out[i] = {r, toEnd, ${NEVER}}
    else
      out[i] = {r, toEnd, -toEnd}
    end
  else
    local z, h = k[1], k[2]
    local win = tonumber(a[1])
    local limit = tonumber(a[2])
    local cost = tonumber(a[3])
    local cutoff = now - win
    local st = totals[z]
    if st == nil then
      local total = tonumber(redis.call('HGET', h, 't'))
      if total == nil then
        total = 0
        for _, m in ipairs(redis.call('ZRANGEBYSCORE', z, '(' .. s(cutoff), '+inf')) do total = total + c(m) end
      else
        for _, m in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', s(cutoff))) do total = total - c(m) end
      end
      st = {total, 0}
      totals[z] = st
    end
    local total = st[1] + st[2]
    local r = limit - total
    if r < 0 then r = 0 end
    -- until the newest entry leaves (one the call itself would add: a window from now); read
    -- only for a call that is refused (an admitted take answers its single script's decision)
    local pending = st[2]
    local function reset()
      if pending > 0 then return win end
      local last = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
      if #last > 0 and tonumber(last[2]) > cutoff then return tonumber(last[2]) + win - now end
      return 0
    end
    if cost <= limit and total + cost <= limit then
      st[2] = st[2] + cost
      out[i] = {r, reset, 0}
    elseif cost > limit then
      out[i] = {r, reset, ${NEVER}}
    else
      local need = total + cost - limit
      local freed = 0
      local retry = -1
      local entries = redis.call('ZRANGEBYSCORE', z, '(' .. s(cutoff), '+inf', 'WITHSCORES')
      for j = 1, #entries, 2 do
        freed = freed + c(entries[j])
        if freed >= need then
          retry = tonumber(entries[j + 1]) + win - now
          break
        end
      end
      -- what the call itself would add leaves last, a window from now
      if retry < 0 then retry = win end
      if retry < 1 then retry = 1 end
      out[i] = {r, reset, -retry}
    end
  end
  if out[i][3] < 0 then admitted = false end
end
if not admitted then
  local reply = {0, 0}
  for i = 1, n do
    local d = out[i]
    if type(d[2]) == 'function' then d[2] = d[2]() end
    reply[i + 2] = d
  end
  return reply
end
-- 2. every take passes
local reply = {1, 0}
if wait0 > 0 then
  -- buckets only, reserving: the caller proceeds at now + D (D the largest wait), so every
  -- bucket books that instant, each take in order: next = max(tat, now + D) + cost·T (a take of
  -- cost 0 books nothing)
  local d = math.ceil(wait0)
  local at = now + d
  for i = 1, n do
    local k, a = keys[i][1], args[i]
    local T = tonumber(a[1])
    local burst = tonumber(a[2])
    local cost = tonumber(a[3])
    local tat = tonumber(redis.call('GET', k)) or now
    if tat < now then tat = now end
    local nxt = tat
    if cost > 0 then
      if at > nxt then nxt = at end
      nxt = math.ceil(nxt + cost * T)
      local ttl = math.ceil((nxt - now) / 1000)
      if ttl < 1 then ttl = 1 end
      redis.call('SET', k, nxt, 'PX', ttl)
    end
    local r = math.floor((now + burst * T - nxt) / T + 0.001)
    if r < 0 then r = 0 elseif r > burst then r = burst end
    reply[i + 2] = {r, nxt - now, d}
  end
  reply[2] = d
  return reply
end
-- otherwise each runs its own script
local delay = 0
for i = 1, n do
  local a = args[i]
  if kinds[i] == 't' then a = {a[1], a[2], a[3], maxWait} end
  local d = take[kinds[i]](keys[i], a)
  if d[3] < 0 then return redis.error_reply('ERR takeAll: take ' .. i .. ' refused after its check passed') end
  if d[3] > delay then delay = d[3] end
  reply[i + 2] = d
end
reply[2] = delay
return reply
`

/**
 * Token bucket adjust. KEYS[1]: TAT. ARGV: interval (µs), burst, delta. `delta > 0` pushes the
 * TAT by `delta·T` from `max(tat, now)` (past the burst: debt), `delta < 0` moves it back, never
 * below `now` (a full bucket, whose key is then deleted), and only when no reservation is
 * outstanding (`tat − burst·T ≤ now`, otherwise it applies nothing: `algorithm.ts` `gcraAdjust`).
 * The TAT is rounded up to a whole µs.
 * Answers `{applied (a decimal string: a clipped give-back may be fractional), remaining,
 * resetAfterUs}`.
 *
 * @internal
 */
export const tokenBucketAdjust = `${prelude}
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local delta = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local applied = delta
local nxt = tat + delta * T
if delta < 0 and tat - burst * T > now + 0.001 then
  -- a reservation is outstanding (its slot ends at the TAT): a give-back applies nothing
  applied = 0
elseif nxt < now then
  -- a give-back clipped at a full bucket
  nxt = now
  applied = (now - tat) / T
end
if applied ~= 0 then
  nxt = math.ceil(nxt)
  if nxt > now then
    local ttl = math.ceil((nxt - now) / 1000)
    if ttl < 1 then ttl = 1 end
    redis.call('SET', KEYS[1], nxt, 'PX', ttl)
  else
    redis.call('DEL', KEYS[1])
  end
else
  nxt = tat
end
local r = math.floor((now + burst * T - nxt) / T + 0.001)
if r < 0 then r = 0 elseif r > burst then r = burst end
return {string.format('%.17g', applied), r, math.ceil(nxt - now)}
`

/**
 * Sliding window adjust. KEYS and ARGV[1..2] as the take; ARGV[3]: delta (whole), ARGV[4]: the
 * entry's id (`time:seq`, the take's ref). While the entry is in the window its cost becomes
 * `max(0, cost + delta)` (the member is renamed, score and expiry kept; the hash's total follows);
 * otherwise (the entry has left, a ref naming none) nothing changes. Answers `{applied, remaining, resetAfterUs}`.
 *
 * @internal
 */
export const slidingWindowAdjust = `${slidingCommon}
local delta = tonumber(ARGV[3])
local ref = ARGV[4]
local tm = tonumber(string.match(ref, '^(%d+):%d+$'))
local applied = 0
if tm ~= nil and tm > cutoff then
  local prefix = ref .. ':'
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', z, s(tm), s(tm))) do
    if string.sub(m, 1, #prefix) == prefix then
      local old = c(m)
      local cost = old + delta
      if cost < 0 then cost = 0 end
      applied = cost - old
      if applied ~= 0 then
        -- add before removing: the ZSET never empties, so its expiry stays
        redis.call('ZADD', z, s(tm), prefix .. s(cost))
        redis.call('ZREM', z, m)
        if redis.call('HEXISTS', h, 't') == 1 then redis.call('HINCRBY', h, 't', s(applied)) end
      end
      break
    end
  end
end
local entries = redis.call('ZRANGEBYSCORE', z, '(' .. s(cutoff), '+inf', 'WITHSCORES')
local total = 0
for i = 1, #entries, 2 do total = total + c(entries[i]) end
local reset = 0
if #entries > 0 then reset = tonumber(entries[#entries]) + win - now end
local remaining = limit - total
if remaining < 0 then remaining = 0 end
return {s(applied), remaining, reset}
`

/**
 * Fixed window adjust. KEYS[1] and ARGV[1..2] as the take; ARGV[3]: delta (whole), ARGV[4]: the
 * window's start (ms, the take's ref, compared as the decimal string a take answers). While that
 * window is the current one its count becomes `max(0, count + delta)` (the key's expiry is the
 * window's end, as a take sets it); otherwise (another window's ref, none) nothing changes. Answers `{applied, remaining, resetAfterUs}`.
 *
 * @internal
 */
export const fixedWindowAdjust = `${fixedCommon}
local delta = tonumber(ARGV[3])
local wf = 'w' .. ARGV[1]
local nf = 'n' .. ARGV[1]
local st = redis.call('HMGET', k, wf, nf)
local count = 0
if tonumber(st[1]) == endMs then count = tonumber(st[2]) or 0 end
local applied = 0
if ARGV[4] == string.format('%d', endMs - win) then
  local nc = count + delta
  if nc < 0 then nc = 0 end
  applied = nc - count
  if applied ~= 0 then
    redis.call('HSET', k, wf, endMs, nf, nc)
    expireAtEnd()
    count = nc
  end
end
local r = limit - count
if r < 0 then r = 0 end
return {string.format('%d', applied), r, toEnd}
`

/**
 * The scripts a batch can run, in opcode order (opcode = index + 1).
 *
 * @internal
 */
export const batchable = [
  tokenBucketTake,
  tokenBucketPeek,
  slidingWindowTake,
  slidingWindowPeek,
  fixedWindowTake,
  fixedWindowPeek,
  slotAcquire,
  slotRenew,
  slotRelease,
  slotPeek,
  takeAll,
  tokenBucketAdjust,
  slidingWindowAdjust,
  fixedWindowAdjust
] as const

/**
 * Several operations in one script: the calls a store receives in the same tick go to Redis as one
 * `EVALSHA`, run one after the other at one server instant, atomically. Each operation is the body
 * of its own script, run as a function of its own `KEYS` and `ARGV`, so its semantics are exactly
 * the single script's. KEYS: every operation's keys, in order. ARGV[1]: the operations, as fields
 * each ended by a newline: the number of operations, then per operation either its opcode (see
 * {@link batchable}), key count, argument count and arguments (which never contain a newline), or
 * the one field `=`: the opcode, key count and arguments of the operation before it (the calls of
 * one limiter in a tick share them; no script writes to its `ARGV`, so the table is shared too).
 * One packed argument instead of several per operation keeps the command small to encode, and
 * the repeat mark keeps the server's parsing per operation to one field.
 * Answers one reply per operation, in order.
 *
 * @internal
 */
export const batch = `${prelude}
local ops = {
${batchable.map(functionOf).join(",\n")}
}
local f = {}
local nf = 0
for x in string.gmatch(ARGV[1], '([^\\n]*)\\n') do
  nf = nf + 1
  f[nf] = x
end
local out = {}
local ki = 0
local ai = 2
local op, nk, a
for i = 1, tonumber(f[1]) do
  local h = f[ai]
  if h == '=' then
    ai = ai + 1
  else
    op = ops[tonumber(h)]
    nk = tonumber(f[ai + 1])
    local na = tonumber(f[ai + 2])
    ai = ai + 2
    a = {}
    for j = 1, na do a[j] = f[ai + j] end
    ai = ai + na + 1
  end
  local k = {}
  for j = 1, nk do k[j] = KEYS[ki + j] end
  ki = ki + nk
  out[i] = op(k, a)
end
return out
`
