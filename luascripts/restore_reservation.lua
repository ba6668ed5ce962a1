-- restore_reservation.lua: put back an open reservation taken from the
-- ledger, for the rebuild of a partition. Runs on partitions that are not
-- ready. ARGV[6] JSON: id, store, customer, lines [[sku, qty], …], x (expires
-- at, unix ms). Result: {1}
local req = cjson.decode(ARGV[6])
if type(req.id) ~= 'string' or req.id == '' or not is_id(req.store) or type(req.lines) ~= 'table' or not is_int(req.x, 0, 1e15) then
  return redis.error_reply('INVALID reservation')
end
local k = rkey(req.id)
redis.call('HSET', k, 'st', req.store, 'c', req.customer or '', 's', 'held', 'l', cjson.encode(req.lines), 'x', req.x, 'ca', NOW)
redis.call('PERSIST', k)
redis.call('ZADD', BASE .. 'rexp', req.x, req.id)
return { 1 }
