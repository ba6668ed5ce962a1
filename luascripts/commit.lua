-- commit.lua: turn a held reservation into a sale. Committing a committed
-- reservation changes nothing; a released or expired one is not held.
-- Request: rid, reason.
-- Result: {replayed, reservation…(6), n, item…×n}
OPS.commit = function(req)
  local r = load_reservation(req.rid or '')
  if not r then return fail('NOT_FOUND', req.rid or '') end
  local out = { '0' }
  if r.status == 'committed' then
    push_reservation(out, r)
    out[#out + 1] = '0'
    return out
  end
  if r.status ~= 'held' then return fail('NOT_HELD', r.status) end
  if NOW >= r.x then return fail('NOT_HELD', 'expired') end
  local items, err = finish_reservation(r, 'COMMIT', 'committed', req)
  if err then return err end
  push_reservation(out, r)
  out[#out + 1] = S(#items)
  for i = 1, #items do push_item(out, items[i]) end
  return out
end
