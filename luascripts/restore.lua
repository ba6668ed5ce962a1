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
-- Or, from ARGV[6] = '#' on (the rebuild's form, no JSON): per item the
-- fields store, sku, on_hand, reserved, version, reorder_point,
-- max_per_customer, updated_at_ms, committed, damaged, quality_control,
-- display, incoming, safety_stock, then n, the number of customers, followed
-- by n pairs customer, units (n = -1: keep_customer_units); expect_version
-- is -1. Decoding JSON was a quarter of the script's instructions.
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

-- apply_restore writes one checked request (the item itself at flush);
-- the customer units keys to clear go to dels, their units to units (the
-- last request of an item wins).
local function apply_restore(req, dels, units)
  local n = { store = req.store, sku = req.sku, oh = req.on_hand, rs = req.reserved, v = req.version,
    rp = req.reorder_point, mpc = req.max_per_customer, ua = req.updated_at_ms,
    cm = req.committed, dm = req.damaged, qc = req.quality_control, dp = req.display, inc = req.incoming,
    ss = req.safety_stock }
  save(n)
  if not req.keep_customer_units then
    local ck = customer_units_key(n.store, n.sku)
    if units[ck] == nil then
      dels[#dels + 1] = ck
    end
    local cu = req.customer_units
    if type(cu) ~= 'table' then cu = false end
    units[ck] = cu
  end
  return n
end

local reqs = {}
local tonum, floor = tonumber, math.floor
-- NUM memoises tonumber: a batch repeats most values (0, -1, counts,
-- versions), and tonumber converts twice with strtod (a sixth of the
-- script's instructions).
local NUM = {}
-- int reads an integer field in [lo, hi], or nil.
local function int(v, lo, hi)
  local n = NUM[v]
  if n == nil then
    n = tonum(v) or false
    NUM[v] = n
  end
  if n and n == floor(n) and n >= lo and n <= hi then return n end
  return nil
end
local packed = {}
if ARGV[6] == '#' then
  local i, last = 7, #ARGV
  while i <= last do
    if i + 14 > last then return redis.error_reply('INVALID request') end
    local store, sku = ARGV[i], ARGV[i + 1]
    if not is_id(store) or not is_id(sku) then return redis.error_reply('INVALID id') end
    local oh = int(ARGV[i + 2], 0, MAX_ON_HAND)
    local n = { store = store, sku = sku, oh = oh, rs = oh and int(ARGV[i + 3], 0, oh), v = int(ARGV[i + 4], 1, 1e15),
      rp = int(ARGV[i + 5], -1, MAX_ON_HAND), mpc = int(ARGV[i + 6], -1, MAX_QTY), ua = int(ARGV[i + 7], 0, 1e15),
      cm = int(ARGV[i + 8], 0, MAX_ON_HAND), dm = int(ARGV[i + 9], 0, MAX_ON_HAND),
      qc = int(ARGV[i + 10], 0, MAX_ON_HAND), dp = int(ARGV[i + 11], 0, MAX_ON_HAND),
      inc = int(ARGV[i + 12], 0, MAX_ON_HAND), ss = int(ARGV[i + 13], -1, MAX_ON_HAND) }
    if not (n.rs and n.v and n.rp and n.mpc and n.ua and n.cm and n.dm and n.qc and n.dp and n.inc and n.ss) or
      n.rs + n.cm + n.dm + n.qc + n.dp > oh then
      return redis.error_reply('INVALID state')
    end
    local ncu = int(ARGV[i + 14], -1, 1e9)
    i = i + 15
    if not ncu or i + 2 * ncu - 1 > last then return redis.error_reply('INVALID customer units') end
    if ncu > 0 then
      local cu = {}
      for j = i, i + 2 * ncu - 1, 2 do
        local u = int(ARGV[j + 1], 0, 1e15)
        if not is_id(ARGV[j]) or not u then return redis.error_reply('INVALID customer units') end
        cu[ARGV[j]] = u
      end
      n.cu = cu
      i = i + 2 * ncu
    end
    n.keep = ncu == -1
    packed[#packed + 1] = n
  end
else
  for i = 6, #ARGV do
    local req = cjson.decode(ARGV[i])
    local err = check_restore(req)
    if err then return redis.error_reply(err) end
    reqs[#reqs + 1] = req
  end
end
local indexed, dels, units = {}, {}, {}
for i = 1, #packed do
  local n = packed[i]
  local cu, keep = n.cu, n.keep
  n.cu, n.keep = nil, nil
  save(n)
  if not keep then
    local ck = customer_units_key(n.store, n.sku)
    if units[ck] == nil then dels[#dels + 1] = ck end
    units[ck] = cu or false
  end
  if not indexed[n.store] then
    indexed[n.store] = true
    index(n)
  end
end
for i = 1, #reqs do
  local n = apply_restore(reqs[i], dels, units)
  if not indexed[n.store] then
    indexed[n.store] = true
    index(n)
  end
end
-- one DEL for many items' customer units (a call per item was a tenth of
-- the script), in chunks that unpack takes
for i = 1, #dels, 1000 do
  redis.call('DEL', unpack(dels, i, math.min(i + 999, #dels)))
end
for i = 1, #dels do
  local cu = units[dels[i]]
  if cu then
    for c, u in pairs(cu) do
      if u > 0 then redis.call('HSET', dels[i], c, u) end
    end
  end
end
flush()
return { 'restored', '1' }
