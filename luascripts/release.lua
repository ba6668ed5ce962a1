-- release.lua: give a held reservation's units back. Releasing a released or
-- expired reservation changes nothing; a committed one is not held; one past
-- its expires_at that the sweeper has not reached yet expires now.
-- Request: reservation_id, reason.
-- Result: the reservation, then item per line changed now (none when
-- nothing changed)
OPS.release = function(req)
  local rid = req.reservation_id
  if type(rid) ~= 'string' or rid == '' then return fail('INVALID', 'reservation id') end
  local r = load_reservation(rid)
  if not r then return fail('NOT_FOUND', rid) end
  local out = {}
  if r.status == 'released' or r.status == 'expired' then
    push_reservation(out, r)
    return out
  end
  if r.status ~= 'held' then return fail('NOT_HELD', r.status) end
  local typ, status = 'RELEASE', 'released'
  if NOW >= r.x then
    -- past expires_at the hold has expired (a read says so already): the
    -- release gives its units back as the sweeper would have
    typ, status = 'EXPIRE', 'expired'
  end
  local items, err = finish_reservation(r, typ, status, req)
  if err then return err end
  push_reservation(out, r)
  for i = 1, #items do push_item(out, items[i]) end
  return out
end
