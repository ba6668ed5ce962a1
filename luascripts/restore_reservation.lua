-- restore_reservation.lua: put back an open reservation taken from the
-- ledger, for the rebuild of a partition. Runs on partitions that are not
-- ready. ARGV[6] JSON: id, store, customer, lines [[sku, qty], …], x (expires
-- at, unix ms), u? (per line, the units the hold counted against the
-- customer's purchase limit, which its release or expiry gives back; absent:
-- none). The customer's usage itself is restored with the item.
-- Result: {1}
local req = cjson.decode(ARGV[6])
if type(req.id) ~= 'string' or req.id == '' or not is_id(req.store) or type(req.lines) ~= 'table' or not is_int(req.x, 0, 1e15) then
  return redis.error_reply('INVALID reservation')
end
local counted = false
if req.u ~= nil then
  if type(req.u) ~= 'table' or #req.u ~= #req.lines then
    return redis.error_reply('INVALID reservation counted units')
  end
  for i = 1, #req.u do
    local q = type(req.lines[i]) == 'table' and req.lines[i][2]
    if type(q) ~= 'number' or not is_int(req.u[i], 0, q) then
      return redis.error_reply('INVALID reservation counted units')
    end
    if req.u[i] > 0 then counted = true end
  end
  if counted and (type(req.customer) ~= 'string' or req.customer == '') then
    return redis.error_reply('INVALID reservation counted units without a customer')
  end
end
local k = rkey(req.id)
redis.call('DEL', k)
if counted then
  redis.call('HSET', k, 'st', req.store, 'c', req.customer or '', 's', 'held', 'l', cjson.encode(req.lines), 'x', req.x, 'ca', NOW,
    'u', cjson.encode(req.u))
else
  redis.call('HSET', k, 'st', req.store, 'c', req.customer or '', 's', 'held', 'l', cjson.encode(req.lines), 'x', req.x, 'ca', NOW)
end
redis.call('ZADD', BASE .. 'rexp', req.x, req.id)
return { 1 }
