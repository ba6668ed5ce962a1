-- extend.lua: renew KEYS[1]'s time to live to ARGV[2] milliseconds only
-- while it holds ARGV[1] (a lock's token), so a holder whose lease ran out
-- never extends the lease another holder has taken since. Stands alone: no
-- prelude.
-- Result: 1 when renewed, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
