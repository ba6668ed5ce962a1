-- restore.lua: overwrite items with state taken from the ledger, for the
-- reconciler and the rebuild of a partition. Emits no event: the ledger
-- already holds the history. Runs on partitions that are not ready.
-- Requests (ARGV[6…], one item each; a rebuild sends hundreds per call):
-- store, sku, on_hand, reserved, committed?, damaged?, quality_control?,
-- display?, incoming? (absent: 0), version, reorder_point,
-- max_per_customer and safety_stock? (-1 or absent: unset), updated_at_ms,
-- expect_version (the item's
-- version now; -1 skips the check, 0 means absent), customer_units
-- {customer: units} (the units each customer held or bought while the item
-- had a purchase limit; kept whether or not the item has one now),
-- keep_customer_units (leave the customer units in Redis as they are).
-- Every request is checked before the first write: one that fails refuses
-- the whole call, which then writes nothing. Items are written at the end,
-- one HSET per store.
-- Result: restored

-- check_restore returns the refusal of one request ('CODE detail'), or nil.
local function check_restore(req)
  if not is_id(req.store) or not is_id(req.sku) then return 'INVALID id' end
  req.committed, req.damaged, req.quality_control = req.committed or 0, req.damaged or 0, req.quality_control or 0
  req.display, req.incoming, req.safety_stock = req.display or 0, req.incoming or 0, req.safety_stock or -1
  if not is_int(req.on_hand, 0, MAX_ON_HAND) or not is_int(req.reserved, 0, req.on_hand) or
    not is_int(req.version, 1, 1e15) or not is_int(req.reorder_point, -1, MAX_ON_HAND) or
    not is_int(req.max_per_customer, -1, MAX_QTY) or not is_int(req.updated_at_ms, 0, 1e15) or
    not is_int(req.committed, 0, MAX_ON_HAND) or not is_int(req.damaged, 0, MAX_ON_HAND) or
    not is_int(req.quality_control, 0, MAX_ON_HAND) or not is_int(req.display, 0, MAX_ON_HAND) or
    not is_int(req.incoming, 0, MAX_ON_HAND) or not is_int(req.safety_stock, -1, MAX_ON_HAND) or
    req.reserved + req.committed + req.damaged + req.quality_control + req.display > req.on_hand then
    return 'INVALID state'
  end
  if not is_int(req.expect_version, -1, 1e15) then return 'INVALID expect_version' end
  local cu = req.customer_units
  if cu ~= nil and not req.keep_customer_units then
    if type(cu) ~= 'table' then return 'INVALID customer units' end
    for c, n in pairs(cu) do
      if not is_id(c) or not is_int(n, 0, 1e15) then
        return 'INVALID customer units'
      end
    end
  end
  if req.expect_version >= 0 then
    local it = load(req.store, req.sku)
    local have = 0
    if it then have = it.v end
    if have ~= req.expect_version then return 'VERSION_MISMATCH ' .. istr(have) end
  end
  return nil
end

-- apply_restore writes one checked request (the item itself at flush).
local function apply_restore(req)
  local cu = req.customer_units
  local n = { store = req.store, sku = req.sku, oh = req.on_hand, rs = req.reserved, v = req.version,
    rp = req.reorder_point, mpc = req.max_per_customer, ua = req.updated_at_ms,
    cm = req.committed, dm = req.damaged, qc = req.quality_control, dp = req.display, inc = req.incoming,
    ss = req.safety_stock }
  save(n)
  if not req.keep_customer_units then
    local ck = customer_units_key(n.store, n.sku)
    redis.call('DEL', ck)
    if type(cu) == 'table' then
      for c, units in pairs(cu) do
        if units > 0 then redis.call('HSET', ck, c, units) end
      end
    end
  end
  return n
end

local reqs = {}
for i = 6, #ARGV do
  local req = cjson.decode(ARGV[i])
  local err = check_restore(req)
  if err then return redis.error_reply(err) end
  reqs[#reqs + 1] = req
end
local indexed = {}
for i = 1, #reqs do
  local n = apply_restore(reqs[i])
  if not indexed[n.store] then
    indexed[n.store] = true
    index(n)
  end
end
flush()
return { 'restored', '1' }
