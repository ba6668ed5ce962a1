-- adjust.lua: change an existing item's on_hand by a delta, in a state.
-- Request: store, sku, delta, state? (committed, damaged, quality_control,
-- display: on_hand and that state change together; absent or 'available':
-- on_hand alone), expect_version?, reason.
-- Result: item
OPS.adjust = function(req)
  if not is_id(req.store) then return fail('INVALID', 'store') end
  if not is_id(req.sku) then return fail('INVALID', 'sku') end
  if not is_int(req.delta, -MAX_ON_HAND, MAX_ON_HAND) or req.delta == 0 then return fail('INVALID', 'delta') end
  local sf = nil
  if req.state ~= nil and req.state ~= 'available' then
    sf = STATE_FIELD[req.state]
    if not sf then return fail('INVALID', 'state') end
  end
  local ev = req.expect_version
  if ev ~= nil and not is_int(ev, 1, 1e15) then return fail('INVALID', 'version') end
  local it = load(req.store, req.sku)
  if not it then return fail('NOT_FOUND', req.sku) end
  if ev ~= nil and it.v ~= ev then
    return fail('VERSION_MISMATCH', istr(it.v))
  end
  local n = it.oh + req.delta
  if sf then
    if it[sf] + req.delta < 0 then
      return fail('INSUFFICIENT', cjson.encode({ { sku = it.sku, requested = -req.delta, available = it[sf] } }))
    end
  elseif n < held(it) then
    return fail('INSUFFICIENT', cjson.encode({ { sku = it.sku, requested = -req.delta, available = it.oh - held(it) } }))
  end
  if n > MAX_ON_HAND then return fail('INVALID', 'delta: on_hand would pass 1000000000000') end
  it.oh, it.v, it.ua = n, it.v + 1, NOW
  local sd = nil
  if sf then
    it[sf] = it[sf] + req.delta
    sd = { [sf] = req.delta }
  end
  save(it)
  emit('ADJUST', it, req.delta, 0, '', '', req, nil, sd)
  local out = {}
  push_item(out, it)
  return out
end
