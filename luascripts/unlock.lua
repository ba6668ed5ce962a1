-- unlock.lua: delete KEYS[1] only while it still holds ARGV[1] (a lock's
-- token, or an idempotency claim's fingerprint), so a holder never removes
-- what another has taken since. Stands alone: no prelude.
-- Result: 1 when deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
