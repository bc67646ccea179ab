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
 *   (and its parsing on the hot path) small.
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
 * GCRA peek (cost 1, consumes nothing). KEYS[1]: TAT. ARGV: interval (µs), burst.
 *
 * @internal
 */
export const tokenBucketPeek = `${prelude}
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local burstT = burst * T
local r = math.floor((now + burstT - tat) / T + 0.001)
if r < 0 then r = 0 elseif r > burst then r = burst end
if burst < 1 then return {r, math.ceil(tat - now), ${NEVER}} end
local wait = tat + T - burstT - now
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
 * `time:seq:cost`), KEYS[2]: hash {t = live total, s = sequence}. ARGV: window (µs), limit, cost.
 * An entry stamped `e` counts while `now < e + window`.
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
  redis.call('ZADD', z, s(now), s(now) .. ':' .. s(seq) .. ':' .. s(cost))
  total = total + cost
  redis.call('HSET', h, 't', s(total))
  local ttl = s(math.ceil(win / 1000))
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', h, ttl)
  return {limit - total, win, 0}
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
 * Exact sliding window peek (cost 1, read-only). KEYS and ARGV as the take, without cost.
 *
 * @internal
 */
export const slidingWindowPeek = `${slidingCommon}
local entries = redis.call('ZRANGEBYSCORE', z, '(' .. s(cutoff), '+inf', 'WITHSCORES')
local total = 0
for i = 1, #entries, 2 do total = total + c(entries[i]) end
local reset = 0
if #entries > 0 then reset = tonumber(entries[#entries]) + win - now end
local remaining = limit - total
if remaining < 0 then remaining = 0 end
if limit >= 1 and total + 1 <= limit then return {remaining, reset, 0} end
if limit < 1 then return {remaining, reset, ${NEVER}} end
local need = total + 1 - limit
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
`

/**
 * Fixed window take. KEYS[1]: a hash holding, per window length `L` (ms), `wL` = the end of the
 * window counted (ms) and `nL` = its count. A `wL` that is not the current window's end is a past
 * window's and counts as empty, so expiry only frees memory and never decides a count (a window's
 * last millisecond cannot over-admit). Each length keeps its own count: while a limiter's window is
 * being changed (a rolling deploy), processes on the old and the new length never reset each
 * other's count, each enforces its own limit. The key expires at the latest end of the windows it
 * holds (`PTTL`; `PEXPIRETIME` would need Redis 7). The first take of a window drops the counters
 * of other lengths whose windows are over, so a retired length leaves nothing behind. A refusal
 * writes nothing. ARGV: window (ms), limit, cost.
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
    local ttl = redis.call('PTTL', k)
    if ttl < 0 or nowMs + ttl < endMs then redis.call('PEXPIREAT', k, endMs) end
  else
    redis.call('HINCRBY', k, nf, cost)
  end
  return {limit - count - cost, toEnd, 0}
end
local r = limit - count
if r < 0 then r = 0 end
if cost > limit then return {r, toEnd, ${NEVER}} end
return {r, toEnd, -toEnd}
`

/**
 * Fixed window peek (cost 1, read-only).
 *
 * @internal
 */
export const fixedWindowPeek = `${fixedCommon}
local st = redis.call('HMGET', k, 'w' .. ARGV[1], 'n' .. ARGV[1])
local count = 0
if tonumber(st[1]) == endMs then count = tonumber(st[2]) or 0 end
local remaining = limit - count
if remaining < 0 then remaining = 0 end
if count + 1 <= limit then return {remaining, toEnd, 0} end
if limit < 1 then return {remaining, toEnd, ${NEVER}} end
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
  slotPeek
] as const

const bodyOf = (source: string): string => {
  if (!source.startsWith(prelude)) throw new Error("a batchable script starts with the prelude")
  return source.slice(prelude.length)
}

/**
 * Several operations in one script: the calls a store receives in the same tick go to Redis as one
 * `EVALSHA`, run one after the other at one server instant, atomically. Each operation is the body
 * of its own script, run as a function of its own `KEYS` and `ARGV`, so its semantics are exactly
 * the single script's. KEYS: every operation's keys, in order. ARGV[1]: the operations, as fields
 * each ended by a newline: the number of operations, then per operation its opcode (see
 * {@link batchable}), key count, argument count and arguments (which never contain a newline).
 * One packed argument instead of several per operation keeps the command small to encode.
 * Answers one reply per operation, in order.
 *
 * @internal
 */
export const batch = `${prelude}
local ops = {
${batchable.map((source) => `function(KEYS, ARGV)\n${bodyOf(source)}\nend`).join(",\n")}
}
local f = {}
local nf = 0
for x in string.gmatch(ARGV[1], '([^\\n]*)\\n') do
  nf = nf + 1
  f[nf] = x
end
local out = {}
local ki = 0
local ai = 1
for i = 1, tonumber(f[1]) do
  local op = ops[tonumber(f[ai + 1])]
  local nk = tonumber(f[ai + 2])
  local na = tonumber(f[ai + 3])
  ai = ai + 3
  local k = {}
  for j = 1, nk do k[j] = KEYS[ki + j] end
  ki = ki + nk
  local a = {}
  for j = 1, na do a[j] = f[ai + j] end
  ai = ai + na
  out[i] = op(k, a)
end
return out
`
