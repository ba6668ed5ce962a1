-- read.lua: the read operations. A partition that is not ready answers
-- NOT_READY, never a miss.
-- Request (ARGV[6]): op, and its members:
--   item         store, sku                 Result: item
--   skus         store                      Result: skus (every SKU of the
--                                           store, unsorted: the engine sorts
--                                           and pages them)
--   items        store, skus                Result: item per SKU found, in
--                                           order (missing ones left out)
--   sku          sku                        Result: item per store of the
--                                           partition carrying it, by store
--   reservation  reservation_id             Result: the reservation
--   stores       (none)                     Result: stores, sorted
if not ready() then return redis.error_reply('NOT_READY ') end
local req = cjson.decode(ARGV[6])
local op = req.op
local out = {}
if op == 'item' then
  if not is_id(req.store) or not is_id(req.sku) then return redis.error_reply('INVALID id') end
  local it = load(req.store, req.sku)
  if not it then return redis.error_reply('NOT_FOUND ' .. req.sku) end
  push_item(out, it)
elseif op == 'skus' then
  if not is_id(req.store) then return redis.error_reply('INVALID store') end
  out[1], out[2] = 'skus', redis.call('HKEYS', store_key(req.store))
elseif op == 'items' then
  local skus = req.skus
  if not is_id(req.store) or type(skus) ~= 'table' then return redis.error_reply('INVALID items') end
  for i = 1, #skus do
    if not is_id(skus[i]) then return redis.error_reply('INVALID skus') end
  end
  if #skus > 0 then
    local vals = redis.call('HMGET', store_key(req.store), unpack(skus))
    for i = 1, #skus do
      if vals[i] then
        push_item(out, unpack_item(req.store, skus[i], vals[i]))
      end
    end
  end
elseif op == 'sku' then
  if not is_id(req.sku) then return redis.error_reply('INVALID sku') end
  local stores = redis.call('SMEMBERS', stores_key())
  table.sort(stores)
  for i = 1, #stores do
    local it = load(stores[i], req.sku)
    if it then push_item(out, it) end
  end
elseif op == 'reservation' then
  local rid = req.reservation_id
  if type(rid) ~= 'string' or rid == '' then return redis.error_reply('INVALID reservation id') end
  local r = load_reservation(rid)
  if not r then return redis.error_reply('NOT_FOUND ' .. rid) end
  push_reservation(out, r)
else
  if op ~= 'stores' then return redis.error_reply('INVALID read') end
  local stores = redis.call('SMEMBERS', stores_key())
  table.sort(stores)
  out[1], out[2] = 'stores', stores
end
return out
