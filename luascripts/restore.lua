-- restore.lua: overwrite an item with state taken from the ledger, for the
-- reconciler and the rebuild of a partition. Emits no event: the ledger
-- already holds the history. Runs on partitions that are not ready.
-- ARGV[6] JSON: store, sku, oh, rs, v, rp, mpc, ua, cur (expected current
-- version; -1 skips the check, 0 means absent), cu [[customer, units], …]
-- (the units each customer held or bought while the item had a purchase
-- limit; kept whether or not the item has one now), keepcu (leave the
-- customer units in Redis as they are).
-- Result: {1 when written}
local req = cjson.decode(ARGV[6])
if not is_id(req.store) or not is_id(req.sku) then return redis.error_reply('INVALID id') end
if not is_int(req.oh, 0, MAX_ON_HAND) or not is_int(req.rs, 0, req.oh) or not is_int(req.v, 1, 1e15) then
  return redis.error_reply('INVALID state')
end
if req.cu ~= nil and not req.keepcu then
  if type(req.cu) ~= 'table' then return redis.error_reply('INVALID customer units') end
  for i = 1, #req.cu do
    local c = req.cu[i]
    if type(c) ~= 'table' or not is_id(c[1]) or not is_int(c[2], 0, 1e15) then
      return redis.error_reply('INVALID customer units')
    end
  end
end
local it = load(req.store, req.sku)
if req.cur ~= nil and req.cur >= 0 then
  local have = 0
  if it then have = it.v end
  if have ~= req.cur then return redis.error_reply('VERSION_MISMATCH ' .. istr(have)) end
end
local n = { store = req.store, sku = req.sku, oh = req.oh, rs = req.rs, v = req.v, rp = req.rp or -1, mpc = req.mpc or -1, ua = req.ua or NOW }
if type(n.ua) ~= 'number' or n.ua < 0 then n.ua = NOW end
save(n)
flush()
index(n)
if not req.keepcu then
  local ck = cukey(n.store, n.sku)
  redis.call('DEL', ck)
  if type(req.cu) == 'table' then
    for i = 1, #req.cu do
      if req.cu[i][2] > 0 then redis.call('HSET', ck, req.cu[i][1], req.cu[i][2]) end
    end
  end
end
return { 1 }
