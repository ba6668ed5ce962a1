-- set.lua: set an item's on_hand absolutely, creating the item if absent.
-- Request: store, sku, on_hand, reorder_point?, max_per_customer? and
-- safety_stock? (-1 clears), expect_version? (0: the item must not exist),
-- reason. on_hand may not go below what the item holds in reserved,
-- committed, damaged, quality_control and display (BELOW_RESERVED).
-- Result: created? item
-- A bulk set creates many items of a few stores in one batch call: index
-- (prelude) adds each store to the store set once per call.
OPS.set = function(req)
  if not is_id(req.store) then return fail('INVALID', 'store') end
  if not is_id(req.sku) then return fail('INVALID', 'sku') end
  if not is_int(req.on_hand, 0, MAX_ON_HAND) then return fail('INVALID', 'on_hand') end
  local rp, mpc, ss, ev = req.reorder_point, req.max_per_customer, req.safety_stock, req.expect_version
  if rp ~= nil and not is_int(rp, -1, MAX_ON_HAND) then return fail('INVALID', 'reorder_point') end
  if mpc ~= nil and not is_int(mpc, -1, MAX_QTY) then return fail('INVALID', 'max_per_customer') end
  if ss ~= nil and not is_int(ss, -1, MAX_ON_HAND) then return fail('INVALID', 'safety_stock') end
  if ev ~= nil and not is_int(ev, 0, 1e15) then return fail('INVALID', 'version') end
  local it = load(req.store, req.sku)
  if ev ~= nil then
    if ev == 0 and it then
      return fail('VERSION_MISMATCH', istr(it.v))
    end
    if ev ~= 0 and (not it or it.v ~= ev) then
      return fail('VERSION_MISMATCH', it and istr(it.v) or '0')
    end
  end
  local out = {}
  local created = not it
  if created then
    it = { store = req.store, sku = req.sku, oh = 0, rs = 0, v = 0, rp = -1, mpc = -1, ua = NOW,
      cm = 0, dm = 0, qc = 0, dp = 0, inc = 0, ss = -1 }
    out[1], out[2] = 'created', '1'
  end
  local h = held(it)
  if req.on_hand < h then
    return fail('BELOW_RESERVED', cjson.encode({ { sku = it.sku, requested = h, available = req.on_hand } }))
  end
  if rp == nil then rp = it.rp end
  if mpc == nil then mpc = it.mpc end
  if ss == nil then ss = it.ss end
  if not created and req.on_hand == it.oh and rp == it.rp and mpc == it.mpc and ss == it.ss then
    push_item(out, it)
    return out
  end
  local d = req.on_hand - it.oh
  it.oh, it.rp, it.mpc, it.ss, it.v, it.ua = req.on_hand, rp, mpc, ss, it.v + 1, NOW
  save(it)
  if created then
    index(it)
  end
  emit('SET', it, d, 0, '', '', req)
  push_item(out, it)
  return out
end
