-- expire.lua: expire the partition's due reservations, at most ARGV[6] of
-- them. Safe to run from many processes: each call is atomic.
-- Result: {expired count, ids…}
if not ready() then return { 0 } end
local limit = tonumber(ARGV[6]) or 100
local ids = redis.call('ZRANGEBYSCORE', BASE .. 'rexp', '-inf', NOW, 'LIMIT', 0, limit)
local out = { 0 }
for i = 1, #ids do
  local r = load_reservation(ids[i])
  if r and r.status == 'held' then
    local _, err = finish_reservation(r, 'EXPIRE', 'expired', { op = 'expire:' .. r.id, pr = 'sweeper' })
    if err then
      redis.call('ZREM', BASE .. 'rexp', ids[i])
      out[#out + 1] = 'corrupt:' .. ids[i]
    else
      out[1] = out[1] + 1
      out[#out + 1] = ids[i]
    end
  else
    redis.call('ZREM', BASE .. 'rexp', ids[i])
  end
end
flush()
return out
