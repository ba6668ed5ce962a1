-- The bare reference's whole server-side work per request: guard, decrement,
-- append one event. KEYS[1] the item hash, KEYS[2] the stream;
-- ARGV: qty, store, sku. Returns the new on_hand, -1 when short, -2 when the
-- item does not exist.
local oh = tonumber(redis.call('HGET', KEYS[1], 'oh'))
if not oh then return -2 end
local q = tonumber(ARGV[1])
if oh < q then return -1 end
oh = redis.call('HINCRBY', KEYS[1], 'oh', -q)
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('XADD', KEYS[2], '*', 's', ARGV[2], 'k', ARGV[3], 'v', v, 'dh', -q, 'oh', oh)
return oh
