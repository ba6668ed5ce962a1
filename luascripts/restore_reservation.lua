-- restore_reservation.lua: put back an open reservation taken from the
-- ledger, for the rebuild of a partition. Runs on partitions that are not
-- ready.
-- Request (ARGV[6]): reservation_id, store, customer, lines [[sku, qty], …],
-- expires_at_ms, counted? (per line, the units the hold counted against the
-- customer's purchase limit, which its release or expiry gives back; absent:
-- none). The customer's usage itself is restored with the item.
-- Result: restored
local req = cjson.decode(ARGV[6])
local rid, lines, counted = req.reservation_id, req.lines, req.counted
if type(rid) ~= 'string' or rid == '' or not is_id(req.store) or type(lines) ~= 'table' or #lines < 1 or
  not is_int(req.expires_at_ms, 0, 1e15) then
  return redis.error_reply('INVALID reservation')
end
local cust = req.customer or ''
if cust ~= '' and not is_id(cust) then return redis.error_reply('INVALID reservation customer') end
for i = 1, #lines do
  local l = lines[i]
  if type(l) ~= 'table' or not is_id(l[1]) or not is_int(l[2], 1, MAX_QTY) then
    return redis.error_reply('INVALID reservation lines')
  end
end
local any = false
if counted ~= nil then
  if type(counted) ~= 'table' or #counted ~= #lines then
    return redis.error_reply('INVALID reservation counted units')
  end
  for i = 1, #counted do
    if not is_int(counted[i], 0, lines[i][2]) then
      return redis.error_reply('INVALID reservation counted units')
    end
    if counted[i] > 0 then any = true end
  end
  if any and cust == '' then
    return redis.error_reply('INVALID reservation counted units without a customer')
  end
end
local k = reservation_key(rid)
redis.call('DEL', k)
if any then
  redis.call('HSET', k, 'st', req.store, 'c', cust, 's', 'held', 'l', cjson.encode(lines), 'x', req.expires_at_ms,
    'ca', NOW, 'u', cjson.encode(counted))
else
  redis.call('HSET', k, 'st', req.store, 'c', cust, 's', 'held', 'l', cjson.encode(lines), 'x', req.expires_at_ms,
    'ca', NOW)
end
redis.call('ZADD', expiries_key(), req.expires_at_ms, rid)
return { 'restored', '1' }
