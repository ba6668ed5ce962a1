-- fulfil.lua: hand committed units over, every line or none: on_hand and
-- committed drop by each line's qty (docs/design.md §10).
-- Request: store, lines [[sku, qty], …], reason (the fulfilment's
-- reference).
-- Result: item per line, in line order
OPS.fulfil = function(req)
  if not is_id(req.store) then return fail('INVALID', 'store') end
  local lines = req.lines
  if type(lines) ~= 'table' or #lines < 1 or #lines > 100 then return fail('INVALID', 'lines') end
  local seen, items = {}, {}
  for i = 1, #lines do
    if type(lines[i]) ~= 'table' then return fail('INVALID', 'lines') end
    local sku, qty = lines[i][1], lines[i][2]
    if not is_id(sku) then return fail('INVALID', 'lines.sku') end
    if not is_int(qty, 1, MAX_QTY) then return fail('INVALID', 'lines.qty') end
    if seen[sku] then return fail('INVALID', 'lines.duplicate ' .. sku) end
    seen[sku] = true
    local it = load(req.store, sku)
    if not it then return fail('NOT_FOUND', sku) end
    items[i] = it
  end
  local short = {}
  for i = 1, #lines do
    local it = items[i]
    if lines[i][2] > it.cm then
      short[#short + 1] = { sku = it.sku, requested = lines[i][2], available = it.cm }
    end
  end
  if #short > 0 then return fail('INSUFFICIENT', cjson.encode(short)) end
  local out = {}
  for i = 1, #items do
    local it, q = items[i], lines[i][2]
    it.oh, it.cm, it.v, it.ua = it.oh - q, it.cm - q, it.v + 1, NOW
    save(it)
    emit('FULFIL', it, -q, 0, '', '', req, nil, { cm = -q })
    push_item(out, it)
  end
  return out
end
