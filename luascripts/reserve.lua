-- reserve.lua: hold every line or none, until expires_at.
-- Request: store, lines [[sku, qty], …], customer?, reservation_id, ttl_ms,
-- reason.
-- Result: the reservation, then item per line, in line order
-- A line of an item with a purchase limit counts against the customer; the
-- reservation records per line the units it counted (field u, absent when
-- none), which a release or expiry gives back.
OPS.reserve = function(req)
  local rid = req.reservation_id
  if type(rid) ~= 'string' or rid == '' then return fail('INVALID', 'reservation id') end
  if not is_int(req.ttl_ms, 1000, 86400000) then return fail('INVALID', 'ttl_seconds') end
  local items, err = check_lines(req, false)
  if err then return err end
  local k = reservation_key(rid)
  if redis.call('EXISTS', k) == 1 then return fail('CONFLICT', 'reservation id exists') end
  local cust = req.customer or ''
  local r = { id = rid, store = req.store, customer = cust, status = 'held', lines = req.lines,
    lj = cjson.encode(req.lines), x = NOW + req.ttl_ms }
  local out = {}
  push_reservation(out, r)
  local counted = nil
  for i = 1, #items do
    local it, q = items[i], req.lines[i][2]
    it.rs, it.v, it.ua = it.rs + q, it.v + 1, NOW
    save(it)
    if it.mpc >= 0 then
      usage_add(it, cust, q)
      if not counted then
        counted = {}
        for j = 1, #items do counted[j] = 0 end
      end
      counted[i] = q
    end
    emit('RESERVE', it, 0, q, r.id, cust, req, r.x)
    push_item(out, it)
  end
  if counted then
    redis.call('HSET', k, 'st', r.store, 'c', cust, 's', 'held', 'l', r.lj, 'x', r.x, 'ca', NOW,
      'u', cjson.encode(counted))
  else
    redis.call('HSET', k, 'st', r.store, 'c', cust, 's', 'held', 'l', r.lj, 'x', r.x, 'ca', NOW)
  end
  redis.call('ZADD', expiries_key(), r.x, r.id)
  return out
end
