"""The Lua scripts the Redis store runs. Each runs atomically inside Redis.

Every mutating command goes through ``redis.pcall``: a script that failed half way
would leave half its writes behind (Redis does not roll scripts back), so a key that
holds something unexpected (bytes written behind metricache's back) is replaced and
reported instead of aborting the batch.
"""

from __future__ import annotations

__all__ = [
    "ADD",
    "APPLY_SYNC",
    "CAD",
    "CAS",
    "CAT",
    "INCR",
    "MERGE_MAP",
    "READ_SERIES",
    "REPLACE_MAP",
]

# A batch (see metricache.sync.batch for the rules): epoch check, registrations,
# writes series by series (life check, traces), refreshes, pruned traces, gauge pages
# and header, TTLs. ARGV[1] is the JSON payload built by RedisStore.apply_sync; every
# key name and field name comes from it (metricache.sync.keyspace defines them).
# Returns {status, epoch, gauges_lost, repaired_keys, lost, joined, stale}: lost and
# stale are 0-based indexes of writes and refreshes, joined is index, life, ...
APPLY_SYNC = r"""
local p = cjson.decode(ARGV[1])
local repaired = 0

local function fix(key)
  redis.call('DEL', key)
  repaired = repaired + 1
end

local function hget(key, field)
  local r = redis.pcall('HGET', key, field)
  if type(r) == 'table' and r.err then
    fix(key)
    return false
  end
  return r
end

-- A series' life as metricache writes it (a token), or false: a key whose life is
-- anything else was written behind our back and is replaced.
local function life_of(key)
  local life = hget(key, p.lf)
  if life and (#life > 64 or not string.match(life, '^[%w._-]+$')) then
    fix(key)
    return false
  end
  return life
end

local function hsetnx(key, field, value)
  local r = redis.pcall('HSETNX', key, field, value)
  if type(r) == 'table' and r.err then
    fix(key)
    redis.call('HSETNX', key, field, value)
  end
end

local epoch_key = p.ek
local cur = redis.pcall('GET', epoch_key)
-- What is not an epoch token (another type, bytes written behind our back) is another
-- epoch: replaced, so that syncing goes on (every instance re-sends its totals).
if type(cur) == 'table' or (cur and (#cur > 64 or not string.match(cur, '^[%w_-]+$'))) then
  fix(epoch_key)
  cur = false
end
if not cur then
  cur = p.pe
  redis.call('SET', epoch_key, cur, 'PX', p.ttl)
end
if cur ~= p.ep then
  return {'epoch_changed', cur, 0, repaired, {}, {}, {}}
end

for _, r in ipairs(p.reg) do
  local key = r[1]
  local fields = r[2]
  for i = 1, #fields, 2 do
    hsetnx(key, fields[i], fields[i + 1])
  end
  redis.call('PEXPIRE', key, p.gttl)
end

local sp, lf, tf, ttl, seq = p.sp, p.lf, p.tf, p.ttl, p.seq
local check = p.chk == 1
local lost, joined, stale = {}, {}, {}
local w = p.w
local lives = p.lv
local i, idx = 1, 0
while i <= #w do
  local key = sp .. w[i]
  local life = lives[w[i + 1]] or ''
  local n = w[i + 2]
  local apply = true
  local traced = false
  if life ~= '' and not check then
    -- The usual write: a series this instance wrote before, in the life it knows. The
    -- trace is named after that life: if it is still there, the series is still that
    -- life (a series created again holds no trace of it), so one call both records the
    -- batch and checks the life.
    local fresh = redis.pcall('HSET', key, tf .. life, seq)
    if type(fresh) == 'table' then
      fix(key)
      fresh = 1
    end
    traced = true
    if fresh == 1 then
      local life_now = life_of(key)
      if life_now ~= life then
        -- Not the life expected: undo the trace (or the key it made), apply nothing.
        if life_now then
          redis.call('HDEL', key, tf .. life)
        else
          -- A map with fields but no life was not written by metricache: replaced.
          if redis.call('HLEN', key) > 1 then repaired = repaired + 1 end
          redis.call('DEL', key)
        end
        lost[#lost + 1] = idx
        apply = false
      end
    end
  else
    local life_now = life_of(key)
    if life ~= '' then
      if life_now ~= life then
        lost[#lost + 1] = idx
        apply = false
      end
    elseif not life_now then
      -- A series map always has its life: a key without one was not written by us.
      if redis.call('EXISTS', key) == 1 then fix(key) end
      redis.call('HSET', key, lf, p.life)
      redis.call('PEXPIRE', key, ttl)
      life = p.life
    else
      joined[#joined + 1] = idx
      joined[#joined + 1] = life_now
      redis.call('PEXPIRE', key, ttl)
      life = life_now
    end
    if apply and check then
      -- Only this very batch can have left this number: anything else proves nothing.
      if tonumber(redis.call('HGET', key, tf .. life)) == seq then apply = false end
    end
  end
  if apply then
    for k = i + 3, i + 2 + 2 * n, 2 do
      local r = redis.pcall('HINCRBY', key, w[k], w[k + 1])
      if type(r) == 'table' and r.err then repaired = repaired + 1 end
    end
    if not traced then redis.call('HSET', key, tf .. life, seq) end
  end
  i = i + 3 + 2 * n
  idx = idx + 1
end

local r = p.r
for j = 1, #r, 2 do
  local key = sp .. r[j]
  if life_of(key) == lives[r[j + 1]] then
    redis.call('PEXPIRE', key, ttl)
  else
    stale[#stale + 1] = (j - 1) / 2
  end
end

local pr = p.pr
for j = 1, #pr, 2 do
  redis.pcall('HDEL', sp .. pr[j], tf .. lives[pr[j + 1]])
end

local glost = 0
local g = p.g
if g then
  local hk = p.hk
  if g.full == 1 then
    for _, page in ipairs(g.pages) do
      redis.call('DEL', page[1])
      local f = page[2]
      for k = 1, #f, 1000 do
        redis.call('HSET', page[1], unpack(f, k, math.min(k + 999, #f)))
      end
      redis.call('PEXPIRE', page[1], p.pttl)
    end
    redis.call('DEL', hk)
    redis.call('HSET', hk, '@', g.id, '#', g.layout)
    redis.call('PEXPIRE', hk, p.live)
  elseif hget(hk, '#') ~= g.layout then
    glost = 1  -- expired, or not ours: every page is written again next time
  else
    redis.call('PEXPIRE', hk, p.live)
    for _, page in ipairs(g.pages) do
      if hget(page[1], '@') ~= g.layout then
        glost = 1
        break
      end
      local f = page[2]
      for k = 1, #f, 1000 do
        redis.call('HSET', page[1], unpack(f, k, math.min(k + 999, #f)))
      end
      local d = page[3]
      for k = 1, #d, 1000 do
        redis.call('HDEL', page[1], unpack(d, k, math.min(k + 999, #d)))
      end
    end
    if glost == 0 then
      for _, key in ipairs(g.touch) do
        if hget(key, '@') ~= g.layout then
          glost = 1
          break
        end
        redis.call('PEXPIRE', key, p.pttl)
      end
    end
  end
end
redis.call('PEXPIRE', epoch_key, ttl)
return {'applied', cur, glost, repaired, lost, joined, stale}
"""

# Read series: ARGV[1] is the JSON of [prefix, life field, [[part, ...], ...],
# [series id, ...], [layout index (1-based), ...]]. Returns, per series, 1 when it is
# there (nil when absent, -1 when the key is not a hash) followed by its parts' values.
READ_SERIES = r"""
local head = cjson.decode(ARGV[1])
local sp, lf, layouts, sids, which = head[1], head[2], head[3], head[4], head[5]
local out = {}
for i = 1, #sids do
  local parts = layouts[which[i]]
  local r = redis.pcall('HMGET', sp .. sids[i], lf, unpack(parts))
  if type(r) == 'table' and r.err then
    out[#out + 1] = -1  -- not a hash: written behind our back
    for _ = 1, #parts do out[#out + 1] = false end
  else
    out[#out + 1] = r[1] and 1 or false  -- whether the series is there
    for k = 2, #r do out[#out + 1] = r[k] end
  end
end
return out
"""

# KEYS[1]; ARGV: amount, ttl ms. Returns the new value, as decimal text.
INCR = r"""
local r = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow') then return redis.error_reply(r.err) end
  redis.call('DEL', KEYS[1])
  r = redis.call('INCRBY', KEYS[1], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
-- The new value as Redis's text: a Lua number (a double) would round beyond 2^53.
return redis.call('GET', KEYS[1])
"""

# Set if absent: KEYS[1]; ARGV: value, ttl ms. Returns 1 if set.
ADD = r"""
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

# Compare and swap: KEYS[1]; ARGV: has_expected (0/1), expected, value, ttl ms.
CAS = r"""
local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'table' and cur.err then cur = '\0wrongtype' end
if (ARGV[1] == '0' and not cur) or (ARGV[1] == '1' and cur == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
"""

# Compare and delete: KEYS[1]; ARGV: expected.
CAD = r"""
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# Compare and touch: KEYS[1]; ARGV: expected, ttl ms.
CAT = r"""
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Merge fields into a hash: KEYS[1]; ARGV: only_new (0/1), ttl ms, field, value, ...
MERGE_MAP = r"""
local cmd = 'HSET'
if ARGV[1] == '1' then cmd = 'HSETNX' end
for i = 3, #ARGV, 2 do
  local r = redis.pcall(cmd, KEYS[1], ARGV[i], ARGV[i + 1])
  if type(r) == 'table' and r.err then
    redis.call('DEL', KEYS[1])
    redis.call(cmd, KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# Replace a hash: KEYS[1]; ARGV: ttl ms, field, value, ...
REPLACE_MAP = r"""
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV > 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
"""
