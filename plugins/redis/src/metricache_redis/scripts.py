"""The Lua scripts the Redis store runs. Each runs atomically inside Redis.

Every mutating command goes through ``redis.pcall``: a script that failed half way
would leave half its writes behind (Redis does not roll scripts back), so a key that
holds something unexpected (bytes written behind metricache's back) is replaced and
reported instead of aborting the batch.

A sync batch is made of three steps, written once here as Lua functions:

* ``control``: the store epoch and the registrations (keys of the control hash tag);
* ``shards``: series writes, refreshes and pruned traces, shard by shard, each shard
  with its marker (keys of one shard's hash tag);
* ``gauges``: the instance's header and gauge pages (keys of the instance's tag).

On one server (``redis://``, Sentinel) :data:`APPLY_SYNC` runs the three in one call.
On Redis Cluster every call must stay within one slot: :data:`APPLY_CONTROL`, one
:data:`APPLY_SHARD` per shard and :data:`APPLY_GAUGES` run each step alone, with every
key they touch declared in ``KEYS`` (so a slot being migrated answers ``ASK`` or
``TRYAGAIN`` instead of letting a script see half a shard).
"""

from __future__ import annotations

__all__ = [
    "ADD",
    "APPLY_CONTROL",
    "APPLY_GAUGES",
    "APPLY_SHARD",
    "APPLY_SYNC",
    "CAD",
    "CAS",
    "CAT",
    "INCR",
    "MERGE_MAP",
    "READ_SERIES",
    "REPLACE_MAP",
]

# Helpers every step uses. `repaired` counts keys replaced because they held
# something metricache did not write.
_HELPERS = r"""
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
local function life_of(key, lf)
  local life = hget(key, lf)
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

local function token_at(key)
  local cur = redis.pcall('GET', key)
  -- What is not a token (another type, bytes written behind our back) is replaced.
  if type(cur) == 'table' or (cur and (#cur > 64 or not string.match(cur, '^[%w_-]+$'))) then
    fix(key)
    return false
  end
  return cur
end
"""

# The epoch (p.ek: its key, p.ep: the batch's, p.pe: proposed if there is none) and
# the registrations (p.reg: [[map key, [field, value, ...]], ...], p.gttl).
# Returns 'applied' or 'epoch_changed', and the store's epoch.
_CONTROL = r"""
local function control(p)
  local cur = token_at(p.ek)
  if not cur then
    cur = p.pe
    redis.call('SET', p.ek, cur, 'PX', p.ttl)
  end
  if cur ~= p.ep then
    return 'epoch_changed', cur
  end
  for _, r in ipairs(p.reg) do
    local key = r[1]
    local fields = r[2]
    for i = 1, #fields, 2 do
      hsetnx(key, fields[i], fields[i + 1])
    end
    redis.call('PEXPIRE', key, p.gttl)
  end
  redis.call('PEXPIRE', p.ek, p.ttl)
  return 'applied', cur
end
"""

# Series, shard by shard (see metricache.sync.batch for the rules). p.sh is a list of
# shards: [series key prefix, marker key or '', writes, refreshes, pruned, lives]; a
# write is index, series id, expected life, n, then n pairs of part and delta; a
# refresh is index, series id, expected life; a pruned trace is series id and life. A
# life is named by its place in the shard's lives (1-based; 0 is no life). A trace's
# field is p.tf followed by the life it was written in. With a marker key (sharded
# stores), a shard whose marker is gone while the batch expects series there (a write
# with a life, or a refresh) has lost its data. Returns lost (write indexes), joined
# (index, life, ...), stale (refresh indexes), and per shard whose marker was gone its
# 0-based number in p.sh and 1 if the batch expected series there (else 0).
_SHARDS = r"""
local function shards(p)
  local lf, tf, ttl, seq = p.lf, p.tf, p.ttl, p.seq
  local check = p.chk == 1
  local lost, joined, stale, resets = {}, {}, {}, {}
  for s, shard in ipairs(p.sh) do
    local sp, mk, w, r, pr, lives = shard[1], shard[2], shard[3], shard[4], shard[5], shard[6]
    if mk ~= '' then
      if token_at(mk) then
        redis.call('PEXPIRE', mk, ttl)
      else
        local expects = #r > 0
        local i = 1
        while i <= #w and not expects do
          if w[i + 2] ~= 0 then expects = true end
          i = i + 4 + 2 * w[i + 3]
        end
        resets[#resets + 1] = s - 1
        resets[#resets + 1] = expects and 1 or 0
        redis.call('SET', mk, p.ep, 'PX', ttl)
      end
    end
    local i = 1
    while i <= #w do
      local idx, key, life, n = w[i], sp .. w[i + 1], lives[w[i + 2]] or '', w[i + 3]
      local apply = true
      local traced = false
      if life ~= '' and not check then
        -- The usual write: a series this instance wrote before, in the life it knows.
        -- The trace is named after that life: if it is still there, the series is
        -- still that life (a series created again holds no trace of it), so one call
        -- both records the batch and checks the life.
        local fresh = redis.pcall('HSET', key, tf .. life, seq)
        if type(fresh) == 'table' then
          fix(key)
          fresh = 1
        end
        traced = true
        if fresh == 1 then
          local life_now = life_of(key, lf)
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
        local life_now = life_of(key, lf)
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
        for k = i + 4, i + 3 + 2 * n, 2 do
          local res = redis.pcall('HINCRBY', key, w[k], w[k + 1])
          if type(res) == 'table' and res.err then repaired = repaired + 1 end
        end
        if not traced then redis.call('HSET', key, tf .. life, seq) end
      end
      i = i + 4 + 2 * n
    end
    for j = 1, #r, 3 do
      local key = sp .. r[j + 1]
      if life_of(key, lf) == lives[r[j + 2]] then
        redis.call('PEXPIRE', key, ttl)
      else
        stale[#stale + 1] = r[j]
      end
    end
    for j = 1, #pr, 2 do
      redis.pcall('HDEL', sp .. pr[j], tf .. lives[pr[j + 1]])
    end
  end
  return lost, joined, stale, resets
end
"""

# The instance's header (p.hk) and gauge pages (p.g: full, id, layout, pages, touch).
# Returns 1 when the gauges were lost (the header expired or is not ours).
_GAUGES = r"""
local function gauges(p)
  local g = p.g
  if not g then return 0 end
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
    return 0
  end
  if hget(hk, '#') ~= g.layout then
    return 1  -- expired, or not ours: every page is written again next time
  end
  redis.call('PEXPIRE', hk, p.live)
  for _, page in ipairs(g.pages) do
    if hget(page[1], '@') ~= g.layout then
      return 1
    end
    local f = page[2]
    for k = 1, #f, 1000 do
      redis.call('HSET', page[1], unpack(f, k, math.min(k + 999, #f)))
    end
    local d = page[3]
    for k = 1, #d, 1000 do
      redis.call('HDEL', page[1], unpack(d, k, math.min(k + 999, #d)))
    end
    -- A changed page is not in the touch list: its expiry is pushed back here.
    redis.call('PEXPIRE', page[1], p.pttl)
  end
  for _, key in ipairs(g.touch) do
    if hget(key, '@') ~= g.layout then
      return 1
    end
    redis.call('PEXPIRE', key, p.pttl)
  end
  return 0
end
"""

# A whole batch in one call (one server). ARGV[1] is the JSON payload built by
# metricache_redis.payload; every key and field name comes from it
# (metricache.sync.keyspace defines them). Returns {status, epoch, gauges_lost,
# repaired_keys, lost, joined, stale, resets}.
APPLY_SYNC = (
    _HELPERS
    + _CONTROL
    + _SHARDS
    + _GAUGES
    + r"""
local p = cjson.decode(ARGV[1])
local status, cur = control(p)
if status ~= 'applied' then
  return {status, cur, 0, repaired, {}, {}, {}, {}}
end
local lost, joined, stale, resets = shards(p)
local glost = gauges(p)
return {status, cur, glost, repaired, lost, joined, stale, resets}
"""
)

# The control step alone (Redis Cluster): KEYS are the epoch and registration maps.
# Returns {status, epoch, repaired_keys}.
APPLY_CONTROL = (
    _HELPERS
    + _CONTROL
    + r"""
local status, cur = control(cjson.decode(ARGV[1]))
return {status, cur, repaired}
"""
)

# One shard alone (Redis Cluster): KEYS are its series and its marker.
# Returns {repaired_keys, lost, joined, stale, resets}.
APPLY_SHARD = (
    _HELPERS
    + _SHARDS
    + r"""
local lost, joined, stale, resets = shards(cjson.decode(ARGV[1]))
return {repaired, lost, joined, stale, resets}
"""
)

# The instance's gauges alone (Redis Cluster): KEYS are its header and pages.
# Returns {gauges_lost, repaired_keys}.
APPLY_GAUGES = (
    _HELPERS
    + _GAUGES
    + r"""
local glost = gauges(cjson.decode(ARGV[1]))
return {glost, repaired}
"""
)

# Read series: ARGV[1] is the JSON of [life field, [[part, ...], ...], [layout index
# (1-based) per series], and on one server [series key, ...]]; on Redis Cluster the
# series keys are KEYS instead (declared, so the call goes to their slot). Returns, per
# series, 1 when it is there (nil when absent, -1 when the key is not a hash) followed
# by its parts' values.
READ_SERIES = r"""
local head = cjson.decode(ARGV[1])
local lf, layouts, which = head[1], head[2], head[3]
local keys = head[4] or KEYS
local out = {}
for i = 1, #keys do
  local parts = layouts[which[i]]
  local r = redis.pcall('HMGET', keys[i], lf, unpack(parts))
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
