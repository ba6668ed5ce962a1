-- expire.lua: expire the partition's due reservations. Safe to run from many
-- processes: each call is atomic. A partition that is not ready is left
-- alone.
-- Request (ARGV[6]): limit, the most holds to expire in one call.
-- Result: expired per hold expired now, corrupt per hold that could not be
-- (dropped from the expiry set, its units left as they are), in due order
local req = cjson.decode(ARGV[6])
if not is_int(req.limit, 1, 100000) then return redis.error_reply('INVALID limit') end
if not ready() then return {} end
local ids = redis.call('ZRANGEBYSCORE', expiries_key(), '-inf', NOW, 'LIMIT', 0, req.limit)
local out = {}
for i = 1, #ids do
  local r = load_reservation(ids[i])
  if r and r.status == 'held' then
    local _, err = finish_reservation(r, 'EXPIRE', 'expired', { op_id = 'expire:' .. r.id, principal = 'sweeper' })
    if err then
      redis.call('ZREM', expiries_key(), ids[i])
      out[#out + 1] = 'corrupt'
    else
      out[#out + 1] = 'expired'
    end
    out[#out + 1] = ids[i]
  else
    redis.call('ZREM', expiries_key(), ids[i])
  end
end
flush()
return out
