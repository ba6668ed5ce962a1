-- read.lua: the read operations. ARGV[6] names one, ARGV[7…] are its
-- arguments. A partition that is not ready answers NOT_READY, never a miss.

if not ready() then return redis.error_reply('NOT_READY ') end
local what = ARGV[6]
local out = {}
if what == 'item' then
  local it = load(ARGV[7], ARGV[8])
  if not it then return redis.error_reply('NOT_FOUND ' .. ARGV[8]) end
  push_item(out, it)
elseif what == 'skus' then
  -- every SKU of store ARGV[7] (the engine sorts and pages them)
  out = redis.call('HKEYS', skey(ARGV[7]))
elseif what == 'items' then
  -- items ARGV[8…] of store ARGV[7]; missing ones are left out
  local skus = {}
  for i = 8, #ARGV do
    skus[#skus + 1] = ARGV[i]
  end
  if #skus > 0 then
    local vals = redis.call('HMGET', skey(ARGV[7]), unpack(skus))
    for i = 1, #skus do
      if vals[i] then
        push_item(out, unpack_item(ARGV[7], skus[i], vals[i]))
      end
    end
  end
elseif what == 'sku' then
  -- every store of this partition that carries SKU ARGV[7]
  local stores = redis.call('SMEMBERS', BASE .. 'stores')
  table.sort(stores)
  for i = 1, #stores do
    local it = load(stores[i], ARGV[7])
    if it then push_item(out, it) end
  end
elseif what == 'reservation' then
  local r = load_reservation(ARGV[7])
  if not r then return redis.error_reply('NOT_FOUND ' .. ARGV[7]) end
  push_reservation(out, r)
elseif what == 'stores' then
  out = redis.call('SMEMBERS', BASE .. 'stores')
  table.sort(out)
else
  return redis.error_reply('INVALID read')
end
return out
