-- commit.lua: turn a held reservation into a sale. Committing a committed
-- reservation changes nothing; a released or expired one is not held.
-- Request: reservation_id, fulfilment? ('later': the units move from
-- reserved to committed, on_hand unchanged; absent or 'now': they leave
-- on_hand), reason.
-- Result: the reservation, then item per line changed now (none when
-- nothing changed)
OPS.commit = function(req)
  local rid = req.reservation_id
  if type(rid) ~= 'string' or rid == '' then return fail('INVALID', 'reservation id') end
  local ff = req.fulfilment
  if ff ~= nil and ff ~= 'now' and ff ~= 'later' then return fail('INVALID', 'fulfilment') end
  local r = load_reservation(rid)
  if not r then return fail('NOT_FOUND', rid) end
  local out = {}
  if r.status == 'committed' then
    push_reservation(out, r)
    return out
  end
  if r.status ~= 'held' then return fail('NOT_HELD', r.status) end
  if NOW >= r.x then return fail('NOT_HELD', 'expired') end
  local items, err = finish_reservation(r, 'COMMIT', 'committed', req, ff == 'later')
  if err then return err end
  push_reservation(out, r)
  for i = 1, #items do push_item(out, items[i]) end
  return out
end
