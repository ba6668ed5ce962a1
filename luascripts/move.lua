-- move.lua: move units of an item between states, on_hand unchanged
-- (docs/design.md §10).
-- Request: store, sku, from, to (available, committed, damaged,
-- quality_control, display), qty, reason.
-- Result: item
-- committed is reached only from available (an order taken by phone) and
-- left only to available (an order cancelled). Moving from available takes
-- at most what a checkout could (available, safety stock kept back).
OPS.move = function(req)
  if not is_id(req.store) then return fail('INVALID', 'store') end
  if not is_id(req.sku) then return fail('INVALID', 'sku') end
  local from, to = req.from, req.to
  if from ~= 'available' and not STATE_FIELD[from] then return fail('INVALID', 'from') end
  if to ~= 'available' and not STATE_FIELD[to] then return fail('INVALID', 'to') end
  if from == to then return fail('INVALID', 'to: must differ from from') end
  if (to == 'committed' or from == 'committed') and from ~= 'available' and to ~= 'available' then
    return fail('INVALID', 'to: committed is reached only from available and left only to available')
  end
  if not is_int(req.qty, 1, MAX_ON_HAND) then return fail('INVALID', 'qty') end
  local it = load(req.store, req.sku)
  if not it then return fail('NOT_FOUND', req.sku) end
  local q = req.qty
  local have
  if from == 'available' then
    have = available(it, false)
  else
    have = it[STATE_FIELD[from]]
  end
  if have < q then
    return fail('INSUFFICIENT', cjson.encode({ { sku = it.sku, requested = q, available = have } }))
  end
  local sd = {}
  if from ~= 'available' then
    local f = STATE_FIELD[from]
    it[f] = it[f] - q
    sd[f] = -q
  end
  if to ~= 'available' then
    local f = STATE_FIELD[to]
    it[f] = it[f] + q
    sd[f] = q
  end
  it.v, it.ua = it.v + 1, NOW
  save(it)
  emit('MOVE', it, 0, 0, '', '', req, nil, sd, from .. ',' .. to .. ',' .. S(q))
  local out = {}
  push_item(out, it)
  return out
end
