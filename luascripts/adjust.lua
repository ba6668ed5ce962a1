-- adjust.lua: change an existing item's on_hand by a delta.
-- Request: store, sku, delta, expect_version?, reason.
-- Result: item
OPS.adjust = function(req)
  if not is_id(req.store) then return fail('INVALID', 'store') end
  if not is_id(req.sku) then return fail('INVALID', 'sku') end
  if not is_int(req.delta, -MAX_ON_HAND, MAX_ON_HAND) or req.delta == 0 then return fail('INVALID', 'delta') end
  local ev = req.expect_version
  if ev ~= nil and not is_int(ev, 1, 1e15) then return fail('INVALID', 'version') end
  local it = load(req.store, req.sku)
  if not it then return fail('NOT_FOUND', req.sku) end
  if ev ~= nil and it.v ~= ev then
    return fail('VERSION_MISMATCH', istr(it.v))
  end
  local n = it.oh + req.delta
  if n < it.rs then
    return fail('INSUFFICIENT', cjson.encode({ { sku = it.sku, requested = -req.delta, available = it.oh - it.rs } }))
  end
  if n > MAX_ON_HAND then return fail('INVALID', 'delta: on_hand would pass 1000000000000') end
  it.oh, it.v, it.ua = n, it.v + 1, NOW
  save(it)
  emit('ADJUST', it, req.delta, 0, '', '', req)
  local out = {}
  push_item(out, it)
  return out
end
