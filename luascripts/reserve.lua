-- reserve.lua: hold every line or none, until expires_at.
-- Request: store, lines [[sku, qty], …], customer?, rid, ttl (ms), reason.
-- Result: {replayed, reservation…(6), n, item…×n}
OPS.reserve = function(req)
  if type(req.rid) ~= 'string' or req.rid == '' then return fail('INVALID', 'reservation id') end
  if not is_int(req.ttl, 1000, 86400000) then return fail('INVALID', 'ttl_seconds') end
  local items, err = check_lines(req)
  if err then return err end
  local k = rkey(req.rid)
  if redis.call('EXISTS', k) == 1 then return fail('CONFLICT', 'reservation id exists') end
  local cust = req.customer or ''
  local r = { id = req.rid, store = req.store, customer = cust, status = 'held', lines = req.lines, x = NOW + req.ttl }
  local out = { '0' }
  push_reservation(out, r)
  out[#out + 1] = S(#items)
  for i = 1, #items do
    local it, q = items[i], req.lines[i][2]
    it.rs, it.v, it.ua = it.rs + q, it.v + 1, NOW
    save(it)
    if it.mpc >= 0 then usage_add(it, cust, q) end
    emit('RESERVE', it, 0, q, r.id, cust, req, r.x)
    push_item(out, it)
  end
  redis.call('HSET', k, 'st', r.store, 'c', cust, 's', 'held', 'l', cjson.encode(r.lines), 'x', r.x, 'ca', NOW)
  redis.call('ZADD', BASE .. 'rexp', r.x, r.id)
  return out
end
