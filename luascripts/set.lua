-- set.lua: set an item's on_hand absolutely, creating the item if absent.
-- Request: store, sku, oh, rp? (-1 clears), mpc? (-1 clears), ev? (expected
-- version; 0 means the item must not exist), reason.
-- Result: {replayed, created, item…}
OPS.set = function(req)
  if not is_id(req.store) then return fail('INVALID', 'store') end
  if not is_id(req.sku) then return fail('INVALID', 'sku') end
  if not is_int(req.oh, 0, MAX_ON_HAND) then return fail('INVALID', 'on_hand') end
  if req.rp ~= nil and not is_int(req.rp, -1, MAX_ON_HAND) then return fail('INVALID', 'reorder_point') end
  if req.mpc ~= nil and not is_int(req.mpc, -1, MAX_QTY) then return fail('INVALID', 'max_per_customer') end
  local it = load(req.store, req.sku)
  if req.ev ~= nil then
    if req.ev == 0 and it then
      return fail('VERSION_MISMATCH', istr(it.v))
    end
    if req.ev ~= 0 and (not it or it.v ~= req.ev) then
      return fail('VERSION_MISMATCH', it and istr(it.v) or '0')
    end
  end
  local created = 0
  if not it then
    it = { store = req.store, sku = req.sku, oh = 0, rs = 0, v = 0, rp = -1, mpc = -1, ua = NOW }
    created = 1
  end
  if req.oh < it.rs then
    return fail('BELOW_RESERVED', cjson.encode({ { sku = it.sku, requested = it.rs, available = req.oh } }))
  end
  local rp, mpc = it.rp, it.mpc
  if req.rp ~= nil then rp = req.rp end
  if req.mpc ~= nil then mpc = req.mpc end
  local out = { '0', S(created) }
  if created == 0 and req.oh == it.oh and rp == it.rp and mpc == it.mpc then
    push_item(out, it)
    return out
  end
  local d = req.oh - it.oh
  it.oh, it.rp, it.mpc, it.v, it.ua = req.oh, rp, mpc, it.v + 1, NOW
  save(it)
  if created == 1 then
    index(it)
  end
  emit('SET', it, d, 0, '', '', req)
  push_item(out, it)
  return out
end
