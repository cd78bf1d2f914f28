"""The Lua scripts of the Redis backend (``backends/redis.py``), each one atomic round trip."""

# One round trip, atomic, for one touch or a flush of many: record each presence (a score
# never goes back), trim what expired, count who came back from offline (absent from the
# users set, or last seen before the offline-before time) and, with history on, add a person
# not yet seen today to the day's and the month's HyperLogLogs. Each user entry's session
# (keyed hash) maps to its members in a hash, so that logging out finds them all; the
# sessions' last touch times let the hash be trimmed with the entries.
# KEYS: entries, visitors, users, sessions, session times (one shard's), then the users' day
# HLL, users' month HLL, visitors' day HLL, visitors' month HLL when they share the shard's
# hash tag (unsharded); without them the people first seen today are returned instead.
# ARGV: entries cutoff, users cutoff, entries TTL, users TTL, offline-before, start of today
# ('' with history off), day's HLL TTL, month's HLL TTL, then per presence: time, member,
# user id ('' for a visitor), session ('' for none).
# Returns {how many users came back from offline, users first seen today, visitors first
# seen today} (both lists empty when the script added them to the HLLs itself).
TOUCH_SCRIPT = r"""
local today = tonumber(ARGV[6])
local offline_before = tonumber(ARGV[5])
local came_back = 0
local wrote = {}
local hlls = #KEYS == 9
local new_users, new_visitors = {}, {}
local function first_today(previous)
  return today and ((not previous) or tonumber(previous) < today)
end
for i = 9, #ARGV, 4 do
  local score, member, uid, session = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if uid == '' then
    if today and first_today(redis.call('ZSCORE', KEYS[2], member)) then
      if hlls then
        redis.call('PFADD', KEYS[8], member)
        redis.call('PFADD', KEYS[9], member)
        wrote.visitors_seen = true
      else
        new_visitors[#new_visitors + 1] = member
      end
    end
    redis.call('ZADD', KEYS[2], 'GT', score, member)
    wrote.visitors = true
  else
    redis.call('ZADD', KEYS[1], 'GT', score, member)
    local previous = redis.call('ZSCORE', KEYS[3], uid)
    if first_today(previous) then
      if hlls then
        redis.call('PFADD', KEYS[6], uid)
        redis.call('PFADD', KEYS[7], uid)
        wrote.users_seen = true
      else
        new_users[#new_users + 1] = uid
      end
    end
    if (not previous) or tonumber(previous) < offline_before then
      came_back = came_back + 1
    end
    redis.call('ZADD', KEYS[3], 'GT', score, uid)
    wrote.entries = true
    if session ~= '' then
      local known = redis.call('HGET', KEYS[4], session)
      if not known then
        redis.call('HSET', KEYS[4], session, member)
      elseif not string.find('\n' .. known .. '\n', '\n' .. member .. '\n', 1, true) then
        redis.call('HSET', KEYS[4], session, known .. '\n' .. member)
      end
      redis.call('ZADD', KEYS[5], 'GT', score, session)
      wrote.sessions = true
    end
  end
end
if wrote.entries then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
if wrote.visitors then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
if wrote.sessions then
  local old = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[1], 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('HDEL', KEYS[4], unpack(old))
    redis.call('ZREM', KEYS[5], unpack(old))
  end
  redis.call('EXPIRE', KEYS[4], ARGV[3])
  redis.call('EXPIRE', KEYS[5], ARGV[3])
end
if wrote.users_seen then
  redis.call('EXPIRE', KEYS[6], ARGV[7])
  redis.call('EXPIRE', KEYS[7], ARGV[8])
end
if wrote.visitors_seen then
  redis.call('EXPIRE', KEYS[8], ARGV[7])
  redis.call('EXPIRE', KEYS[9], ARGV[8])
end
return {came_back, new_users, new_visitors}
"""

# Logging out: remove every entry of a session. KEYS: entries, sessions, session times.
# ARGV: the session's keyed hash.
REMOVE_SESSION_SCRIPT = r"""
local members = redis.call('HGET', KEYS[2], ARGV[1])
if members then
  for member in string.gmatch(members, '[^\n]+') do
    redis.call('ZREM', KEYS[1], member)
  end
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
"""

# Keep a minute's sample and raise its hour's peaks (one sampler per minute, fleet-wide).
# KEYS: minutes, hours. ARGV: minute start, hour start, entries, users, visitors, oldest
# minute kept, oldest hour kept, TTL.
SAMPLE_SCRIPT = """
local counts = {tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])}
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1] .. ':' .. table.concat(counts, ':'))
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], ARGV[2])) do
  local _, e, u, v = string.match(old, '^(%d+):(%d+):(%d+):(%d+)$')
  if e then
    counts = {math.max(counts[1], tonumber(e)), math.max(counts[2], tonumber(u)),
              math.max(counts[3], tonumber(v))}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[2], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2] .. ':' .. table.concat(counts, ':'))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
"""

# Distinct counts of groups of HyperLogLogs in one round trip (a Cluster pipeline may not
# send PFCOUNT). KEYS: the HLLs, group after group. ARGV: how many keys each group has.
UNIQUES_SCRIPT = """
local found, first = {}, 1
for group = 1, #ARGV do
  local size = tonumber(ARGV[group])
  found[group] = redis.call('PFCOUNT', unpack(KEYS, first, first + size - 1))
  first = first + size
end
return found
"""
