"""The Lua scripts the Redis store runs. Each runs atomically inside Redis.

Every mutating command goes through ``redis.pcall``: a script that failed half way
would leave half its writes behind (Redis does not roll scripts back), so a key that
holds something unexpected (bytes written behind metricache's back) is replaced and
reported instead of aborting the batch.
"""

from __future__ import annotations

__all__ = ["ADD", "APPLY_SYNC", "CAD", "CAS", "CAT", "INCR", "MERGE_MAP", "REPLACE_MAP"]

# A batch: epoch check, duplicate check, registrations, increments, gauge map, TTLs.
# ARGV[1] is the JSON payload built by RedisStore.apply_sync. Returns
# {status, epoch, gauges_lost, repaired_keys}.
APPLY_SYNC = r"""
local p = cjson.decode(ARGV[1])
local repaired = 0

local function fix(key)
  redis.call('DEL', key)
  repaired = repaired + 1
end

local function incrby(key, delta)
  local r = redis.pcall('INCRBY', key, delta)
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'overflow') then
      repaired = repaired + 1
      return
    end
    fix(key)
    redis.call('INCRBY', key, delta)
  end
  redis.call('PEXPIRE', key, p.ttl)
end

local function hsetnx(key, field, value)
  local r = redis.pcall('HSETNX', key, field, value)
  if type(r) == 'table' and r.err then
    fix(key)
    redis.call('HSETNX', key, field, value)
  end
end

local epoch_key = p.ns .. ':epoch'
local cur = redis.pcall('GET', epoch_key)
-- What is not an epoch token (another type, bytes written behind our back) is another
-- epoch: replaced, so that syncing goes on (every instance re-sends its totals).
if type(cur) == 'table' or (cur and (#cur > 64 or not string.match(cur, '^[%w_-]+$'))) then
  fix(epoch_key)
  cur = false
end
if not cur then
  cur = p.proposed
  redis.call('SET', epoch_key, cur, 'PX', p.ttl)
end
if cur ~= p.epoch then
  return {'epoch_changed', cur, 0, repaired}
end
local seq_key = p.ns .. ':seq:' .. p.token
local stored = redis.pcall('GET', seq_key)
local last = tonumber(stored)
if stored and (not last or redis.call('PTTL', seq_key) == -1) then
  -- metricache always writes a number with a TTL: anything else was written behind
  -- its back. Replace it rather than let it reject (or wrongly accept) batches.
  repaired = repaired + 1
  last = 0
end
if p.seq <= (last or 0) then
  return {'duplicate', cur, 0, 0}
end

for _, r in ipairs(p.reg) do
  local key = r[1]
  local fields = r[2]
  for i = 1, #fields, 2 do
    hsetnx(key, fields[i], fields[i + 1])
  end
  redis.call('PEXPIRE', key, p.gen_ttl)
end

local inc = p.inc
local prefix = p.ns .. ':v:'
for i = 1, #inc, 3 do
  incrby(prefix .. inc[i] .. ':' .. inc[i + 1], inc[i + 2])
end

local lost = 0
if p.gauges then
  redis.call('DEL', p.gkey)
  local g = p.gauges
  for i = 1, #g, 1000 do
    redis.call('HSET', p.gkey, unpack(g, i, math.min(i + 999, #g)))
  end
  redis.call('PEXPIRE', p.gkey, p.live)
elseif redis.call('PEXPIRE', p.gkey, p.live) == 0 then
  lost = 1
end
redis.call('SET', seq_key, p.seq, 'PX', p.ttl)
redis.call('PEXPIRE', epoch_key, p.ttl)
return {'applied', cur, lost, repaired}
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
