-- checkout.lua: sell every line or none.
-- Request: store, lines [[sku, qty], …], customer?, reason.
-- Result: item per line, in line order
-- A line of an item with a purchase limit counts against the customer for
-- good; a line of an item without one costs no call for it.
OPS.checkout = function(req)
  local items, err = check_lines(req)
  if err then return err end
  local cust = req.customer or ''
  local out = {}
  for i = 1, #items do
    local it, q = items[i], req.lines[i][2]
    it.oh, it.v, it.ua = it.oh - q, it.v + 1, NOW
    save(it)
    if it.mpc >= 0 then usage_add(it, cust, q) end
    emit('SALE', it, -q, 0, '', cust, req)
    push_item(out, it)
  end
  return out
end
