-- checkout.lua: sell every line or none.
-- Request: store, lines [[sku, qty], …], customer?, channel? ('pos': a till
-- sale, which may sell the safety stock too), fulfilment? ('later': the
-- units move to committed, on_hand unchanged, until a fulfilment hands them
-- over; absent or 'now': they leave on_hand), reason.
-- Result: item per line, in line order
-- A line of an item with a purchase limit counts against the customer for
-- good; a line of an item without one costs no call for it.
OPS.checkout = function(req)
  local ch, ff = req.channel, req.fulfilment
  if ch ~= nil and ch ~= 'pos' and ch ~= 'web' then return fail('INVALID', 'channel') end
  if ff ~= nil and ff ~= 'now' and ff ~= 'later' then return fail('INVALID', 'fulfilment') end
  local items, err = check_lines(req, ch == 'pos')
  if err then return err end
  local cust = req.customer or ''
  local later = ff == 'later'
  local out = {}
  for i = 1, #items do
    local it, q = items[i], req.lines[i][2]
    it.v, it.ua = it.v + 1, NOW
    if later then
      it.cm = it.cm + q
    else
      it.oh = it.oh - q
    end
    save(it)
    if it.mpc >= 0 then usage_add(it, cust, q) end
    if later then
      emit('SALE', it, 0, 0, '', cust, req, nil, { cm = q })
    else
      emit('SALE', it, -q, 0, '', cust, req)
    end
    push_item(out, it)
  end
  return out
end
