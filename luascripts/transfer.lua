-- transfer.lua: the steps of a transfer between locations, and its reads
-- (docs/design.md §20). A transfer's record lives in the partition of its
-- destination (transfer_key), which decides its status: receipts and the
-- cancel run there, atomically, so they can never both win. The source keeps
-- an outbound marker (transfer_out_key) in its own partition. A step that
-- must follow in the other partition is queued in the pending set of the
-- partition that did the first half (transfer_pending_key, member
-- "<step>:<id>", score due ms); the engine's TransferWorker runs it when it is
-- still there once due. Every step is idempotent: its marker (the record's
-- existence, the marker's state) tells a step already done, so a step run
-- twice changes nothing the second time.
--
-- Steps (req.op):
--   transfer_ship     source: take the units off on_hand (TRANSFER_OUT),
--                     write the outbound marker (state shipped), queue
--                     "expect:<id>" in the source's pending set
--   transfer_expect   destination: incoming up (TRANSFER_EXPECTED; an
--                     absent item is created with on_hand 0), write the
--                     record (status in_transit); done already: no change.
--                     A supplier transfer (no from) is this step alone.
--   transfer_receive  destination: incoming down; received units join
--                     on_hand, damaged ones on_hand and damaged
--                     (TRANSFER_IN), missing ones are written off
--                     (TRANSFER_LOSS); status received once all are counted
--   transfer_cancel   destination: nothing received yet; incoming down
--                     (TRANSFER_CANCEL), status cancelled, queue
--                     "return:<id>" in the destination's pending set
--   transfer_return   source: units back on on_hand (TRANSFER_CANCEL),
--                     marker state returned; returned already: no change
-- Reads (no run_write): transfer_get (one record), transfer_open (a store's
-- in-transit transfers, for available to promise), transfer_list (a page of
-- a store's transfers, or of the partition's).
-- Repairs (TFIX: no run_write, on a partition being rebuilt, where the
-- ledger has one side's step but lost the other's that ran before it):
--   transfer_reship   source: the ledger has the expect but not the ship;
--                     the ship again without the availability check (the
--                     ledger's state is the one before the ship, where it
--                     was valid); marker present: no change
--   transfer_recancel destination: the source returned the units but the
--                     ledger lost the cancel; the cancel again, without
--                     queuing the return; not in transit: no change
--
-- Request members: op, id, from, to, lines ([[sku, qty], …]; receive:
-- [[sku, received, damaged, missing], …]), expected_at (ms, 0: none),
-- reference, created_at (ms; expect), grace_ms (delay before the worker may
-- run a queued step), keep_ms (receive, cancel: how long a finished record
-- stays before a TransferWorker deletes it; 0: for good), ids, status, store, after (list cursor "<created ms>:<id>"),
-- limit, and run_write's reason, principal, op_id, idem_key, fingerprint,
-- generated.
--
-- Result: transfer, the record as one JSON array [id, from, to, status,
-- lines [[sku, qty, received, damaged, missing], …], expected_at ms,
-- reference, created_at ms, updated_at ms] (an array: a JSON object's member
-- order would not be stable, and the result is stored as an idempotency
-- record); the source's steps answer their marker in the same shape, status
-- shipped or returned. Reads answer transfer once per record, and list
-- next (the cursor of the next page, '' at the end).
--
-- Events carry tid (the transfer id) and, on the first event of each step,
-- tr: the record after the step as above, which the ledger keeps so the
-- rebuild can restore open transfers (persist/transfers.go).

-- t_reference checks a reference: free text like a reason.
local function t_text_ok(s)
  return s == nil or (type(s) == 'string' and #s <= 1024 and not string.find(s, '[%z\1-\31\127]'))
end

-- t_check_lines checks lines [[sku, qty], …]: 1..100, ids, qty, distinct.
local function t_check_lines(lines)
  if type(lines) ~= 'table' or #lines < 1 or #lines > 100 then
    return fail('INVALID', 'lines')
  end
  local seen = {}
  for i = 1, #lines do
    local l = lines[i]
    if type(l) ~= 'table' then return fail('INVALID', 'lines') end
    if not is_id(l[1]) then return fail('INVALID', 'lines.sku') end
    if not is_int(l[2], 1, MAX_QTY) then return fail('INVALID', 'lines.qty') end
    if seen[l[1]] then return fail('INVALID', 'lines.duplicate ' .. l[1]) end
    seen[l[1]] = true
  end
  return nil
end

-- t_check_head checks what every new transfer names.
local function t_check_head(req, with_from)
  if type(req.id) ~= 'string' or not string.find(req.id, '^%d+%-%x+$') or #req.id > 64 then
    return fail('INVALID', 'id')
  end
  if with_from then
    if not is_id(req.from) then return fail('INVALID', 'from') end
  elseif req.from ~= nil and req.from ~= '' and not is_id(req.from) then
    return fail('INVALID', 'from')
  end
  if not is_id(req.to) then return fail('INVALID', 'to') end
  if req.from == req.to then return fail('INVALID', 'to: a transfer cannot go to its own source') end
  if req.expected_at ~= nil and not is_int(req.expected_at, 0, 1e14) then return fail('INVALID', 'expected_at') end
  if not t_text_ok(req.reference) then return fail('INVALID', 'reference') end
  return t_check_lines(req.lines)
end

-- t_new_item is an absent item created by a transfer: on_hand 0.
local function t_new_item(store, sku)
  local it = {
    store = store, sku = sku, oh = 0, rs = 0, v = 0, ua = NOW,
    rp = -1, mpc = -1, cm = 0, dm = 0, qc = 0, dp = 0, inc = 0, ss = -1,
  }
  it.ck = store .. ':' .. sku
  CACHE[it.ck] = it
  index(it)
  return it
end

-- t_emit appends a transfer step's event of one item: the numbers as emit
-- packs them, the states always (sd: deltas by field dm, inc), then tid and,
-- on the first event of a step, tr.
local function t_emit(typ, it, doh, sd, req, tid, tr)
  local n = S(it.v) .. ',' .. S(doh) .. ',0,' .. S(it.oh) .. ',' .. S(it.rs) .. ',' ..
    S(it.rp) .. ',' .. S(it.mpc) .. ',' .. NOW_S .. ',0' .. states_str(it) .. ',' ..
    S(sd.cm or 0) .. ',' .. S(sd.dm or 0) .. ',0,0,' .. S(sd.inc or 0)
  if tr then
    redis.call('XADD', EVENTS, '*', 's', it.store, 'k', it.sku, 't', typ, 'n', n,
      'rid', '', 'c', '', 'op', req.op_id or '', 'rsn', req.reason or '', 'pr', req.principal or '',
      'tid', tid, 'tr', tr)
  else
    redis.call('XADD', EVENTS, '*', 's', it.store, 'k', it.sku, 't', typ, 'n', n,
      'rid', '', 'c', '', 'op', req.op_id or '', 'rsn', req.reason or '', 'pr', req.principal or '',
      'tid', tid)
  end
  if XLEN then
    XLEN = XLEN + 1
  end
end

-- A record as stored: hash fields fr (from, '' for a supplier), to, s
-- (status), l (lines JSON [[sku, qty, received, damaged, missing], …]), ea
-- (expected_at ms, 0: none), ref, ca (created ms), ua (updated ms). The
-- outbound marker has the same fields, s being shipped or returned.
local T_FIELDS = { 'fr', 'to', 's', 'l', 'ea', 'ref', 'ca', 'ua' }

local function t_load(key, id)
  local h = redis.call('HMGET', key, unpack(T_FIELDS))
  if not h[2] then
    return nil
  end
  return { id = id, fr = h[1] or '', to = h[2], s = h[3], l = cjson.decode(h[4]), ea = tonumber(h[5]) or 0,
    ref = h[6] or '', ca = tonumber(h[7]) or 0, ua = tonumber(h[8]) or 0 }
end

local function t_save(key, r)
  redis.call('HSET', key, 'fr', r.fr, 'to', r.to, 's', r.s, 'l', cjson.encode(r.l), 'ea', S(r.ea), 'ref', r.ref,
    'ca', S(r.ca), 'ua', S(r.ua))
end

-- t_json is the record as the result and the ledger carry it.
local function t_json(r)
  return cjson.encode({ r.id, r.fr, r.to, r.s, r.l, r.ea, r.ref, r.ca, r.ua })
end

local function t_reply(r)
  return { 'transfer', t_json(r) }
end

-- t_open is what a line still waits for: qty - received - damaged - missing.
local function t_open(l)
  return l[2] - l[3] - l[4] - l[5]
end

-- transfer_done_key: TransferDoneKey, the finished records a TransferWorker
-- deletes once their retention has passed (member id, score due ms).
local function transfer_done_key() return BASE .. 'tdone' end

-- t_retire schedules a finished record's deletion after req.keep_ms (0:
-- kept for good).
local function t_retire(id, req)
  local k = req.keep_ms
  if is_int(k, 1, 1e13) then
    redis.call('ZADD', transfer_done_key(), NOW + k, id)
  end
end

local function t_queue(step, id, req)
  local g = req.grace_ms
  if not is_int(g, 0, 3600000) then g = 0 end
  redis.call('ZADD', transfer_pending_key(), NOW + g, step .. ':' .. id)
end

OPS.transfer_ship = function(req)
  local err = t_check_head(req, true)
  if err then return err end
  if redis.call('EXISTS', transfer_out_key(req.id)) == 1 then return fail('CONFLICT', 'transfer id exists') end
  -- a SKU the source does not carry has nothing available there
  local items, short = {}, {}
  for i = 1, #req.lines do
    local it = load(req.from, req.lines[i][1])
    local avail = 0
    if it then avail = available(it, false) end
    if req.lines[i][2] > avail then
      short[#short + 1] = { sku = req.lines[i][1], requested = req.lines[i][2], available = avail }
    end
    items[i] = it
  end
  if #short > 0 then return fail('INSUFFICIENT', cjson.encode(short)) end
  local r = { id = req.id, fr = req.from, to = req.to, s = 'shipped', l = {}, ea = req.expected_at or 0,
    ref = req.reference or '', ca = NOW, ua = NOW }
  for i = 1, #req.lines do
    r.l[i] = { req.lines[i][1], req.lines[i][2], 0, 0, 0 }
  end
  local tr = t_json(r)
  for i = 1, #items do
    local it, q = items[i], req.lines[i][2]
    it.oh, it.v, it.ua = it.oh - q, it.v + 1, NOW
    save(it)
    t_emit('TRANSFER_OUT', it, -q, {}, req, r.id, i == 1 and tr or nil)
  end
  t_save(transfer_out_key(r.id), r)
  redis.call('ZADD', store_transfers_key(r.fr), r.ca, r.id)
  t_queue('expect', r.id, req)
  return t_reply(r)
end

OPS.transfer_expect = function(req)
  local err = t_check_head(req, false)
  if err then return err end
  local key = transfer_key(req.id)
  local prev = t_load(key, req.id)
  if prev then
    -- done already (by the creator, the worker, or a retry): no change
    return t_reply(prev)
  end
  local ca = req.created_at
  if ca == nil or ca == 0 then ca = NOW end
  if not is_int(ca, 1, 1e14) then return fail('INVALID', 'created_at') end
  local items = {}
  for i = 1, #req.lines do
    local it = load(req.to, req.lines[i][1])
    if it and it.inc + req.lines[i][2] > MAX_ON_HAND then return fail('INVALID', 'lines.qty: incoming would pass 1000000000000') end
    items[i] = it or false
  end
  local r = { id = req.id, fr = req.from or '', to = req.to, s = 'in_transit', l = {}, ea = req.expected_at or 0,
    ref = req.reference or '', ca = ca, ua = NOW }
  for i = 1, #req.lines do
    r.l[i] = { req.lines[i][1], req.lines[i][2], 0, 0, 0 }
  end
  local tr = t_json(r)
  for i = 1, #req.lines do
    local it, q = items[i], req.lines[i][2]
    if not it then it = t_new_item(req.to, req.lines[i][1]) end
    it.inc, it.v, it.ua = it.inc + q, it.v + 1, NOW
    save(it)
    t_emit('TRANSFER_EXPECTED', it, 0, { inc = q }, req, r.id, i == 1 and tr or nil)
  end
  t_save(key, r)
  redis.call('ZADD', transfers_key(), r.ca, r.id)
  redis.call('ZADD', store_transfers_key(r.to), r.ca, r.id)
  redis.call('SADD', store_incoming_key(r.to), r.id)
  return t_reply(r)
end

-- t_decided refuses a step on a transfer that is no longer in transit.
local function t_decided(r)
  if r.s ~= 'in_transit' then return fail('TRANSFER_STATE', r.s) end
  return nil
end

OPS.transfer_receive = function(req)
  if type(req.id) ~= 'string' or req.id == '' then return fail('INVALID', 'id') end
  local key = transfer_key(req.id)
  local r = t_load(key, req.id)
  if not r then return fail('NOT_FOUND', 'transfer ' .. req.id) end
  local err = t_decided(r)
  if err then return err end
  local lines = req.lines
  if type(lines) ~= 'table' or #lines < 1 or #lines > 100 then return fail('INVALID', 'lines') end
  local at = {}
  for i = 1, #r.l do at[r.l[i][1]] = i end
  local seen, over, items = {}, {}, {}
  for i = 1, #lines do
    local l = lines[i]
    if type(l) ~= 'table' or not is_id(l[1]) then return fail('INVALID', 'lines.sku') end
    if not at[l[1]] then return fail('INVALID', 'lines.sku: ' .. l[1] .. ' is not in the transfer') end
    if seen[l[1]] then return fail('INVALID', 'lines.duplicate ' .. l[1]) end
    seen[l[1]] = true
    for j = 2, 4 do
      if not is_int(l[j], 0, MAX_QTY) then return fail('INVALID', 'lines.received') end
    end
    local n = l[2] + l[3] + l[4]
    if n < 1 then return fail('INVALID', 'lines: a line receives at least one unit') end
    local open = t_open(r.l[at[l[1]]])
    if n > open then
      over[#over + 1] = { sku = l[1], requested = n, open = open }
    end
  end
  if #over > 0 then return fail('OVER_RECEIPT', cjson.encode(over)) end
  for i = 1, #lines do
    local it = load(r.to, lines[i][1])
    if not it or it.inc < lines[i][2] + lines[i][3] + lines[i][4] then
      return fail('CORRUPT', 'transfer ' .. r.id .. ' line ' .. lines[i][1] .. ': incoming below what is open')
    end
    items[i] = it
  end
  r.ua = NOW
  local done = true
  for i = 1, #lines do
    local rl = r.l[at[lines[i][1]]]
    rl[3], rl[4], rl[5] = rl[3] + lines[i][2], rl[4] + lines[i][3], rl[5] + lines[i][4]
  end
  for i = 1, #r.l do
    if t_open(r.l[i]) > 0 then done = false end
  end
  if done then r.s = 'received' end
  local tr = t_json(r)
  for i = 1, #lines do
    local it, got, dmg, mis = items[i], lines[i][2], lines[i][3], lines[i][4]
    local n = got + dmg
    if n > 0 then
      it.oh, it.dm, it.inc, it.v, it.ua = it.oh + n, it.dm + dmg, it.inc - n, it.v + 1, NOW
      save(it)
      t_emit('TRANSFER_IN', it, n, { dm = dmg, inc = -n }, req, r.id, tr)
      tr = nil
    end
    if mis > 0 then
      it.inc, it.v, it.ua = it.inc - mis, it.v + 1, NOW
      save(it)
      t_emit('TRANSFER_LOSS', it, 0, { inc = -mis }, req, r.id, tr)
      tr = nil
    end
  end
  t_save(key, r)
  if done then
    redis.call('SREM', store_incoming_key(r.to), r.id)
    t_retire(r.id, req)
  end
  return t_reply(r)
end

-- t_cancel cancels an in-transit transfer of which nothing was received
-- (record r under key, in the destination's partition): incoming drops by
-- every line, one TRANSFER_CANCEL per line, the record says cancelled. It
-- returns a refusal, or nil once done. Shared by cancel and the rebuild's
-- re-applied cancel (transfer_recancel).
local function t_cancel(key, r, req)
  local items = {}
  for i = 1, #r.l do
    local l = r.l[i]
    if l[3] + l[4] + l[5] > 0 then return fail('TRANSFER_STATE', 'partly_received') end
    local it = load(r.to, l[1])
    if not it or it.inc < l[2] then return fail('CORRUPT', 'transfer ' .. r.id .. ' line ' .. l[1] .. ': incoming below what is open') end
    items[i] = it
  end
  r.s, r.ua = 'cancelled', NOW
  local tr = t_json(r)
  for i = 1, #items do
    local it, q = items[i], r.l[i][2]
    it.inc, it.v, it.ua = it.inc - q, it.v + 1, NOW
    save(it)
    t_emit('TRANSFER_CANCEL', it, 0, { inc = -q }, req, r.id, i == 1 and tr or nil)
  end
  t_save(key, r)
  redis.call('SREM', store_incoming_key(r.to), r.id)
  return nil
end

OPS.transfer_cancel = function(req)
  if type(req.id) ~= 'string' or req.id == '' then return fail('INVALID', 'id') end
  local key = transfer_key(req.id)
  local r = t_load(key, req.id)
  if not r then return fail('NOT_FOUND', 'transfer ' .. req.id) end
  local err = t_decided(r) or t_cancel(key, r, req)
  if err then return err end
  if r.fr ~= '' then t_queue('return', r.id, req) end
  t_retire(r.id, req)
  return t_reply(r)
end

OPS.transfer_return = function(req)
  if type(req.id) ~= 'string' or req.id == '' then return fail('INVALID', 'id') end
  local key = transfer_out_key(req.id)
  local r = t_load(key, req.id)
  if not r then return fail('NOT_FOUND', 'transfer ' .. req.id) end
  if r.s == 'returned' then return t_reply(r) end
  r.s, r.ua = 'returned', NOW
  local tr = t_json(r)
  for i = 1, #r.l do
    local q = r.l[i][2]
    local it = load(r.fr, r.l[i][1]) or t_new_item(r.fr, r.l[i][1])
    if it.oh + q > MAX_ON_HAND then return fail('CORRUPT', 'transfer ' .. r.id .. ': on_hand would pass 1000000000000') end
    it.oh, it.v, it.ua = it.oh + q, it.v + 1, NOW
    save(it)
    t_emit('TRANSFER_CANCEL', it, q, {}, req, r.id, i == 1 and tr or nil)
  end
  t_save(key, r)
  return t_reply(r)
end

-- Reads. They answer NOT_READY on a partition without its marker, like
-- every read.
local TREADS = {}

TREADS.transfer_get = function(req)
  local r = t_load(transfer_key(req.id), req.id)
  if not r then return fail('NOT_FOUND', 'transfer ' .. tostring(req.id)) end
  return t_reply(r)
end

-- t_records answers the records of ids found here, in order, as
-- 'transfer', json pairs.
local function t_records(ids)
  local out = {}
  for i = 1, #ids do
    local r = t_load(transfer_key(ids[i]), ids[i])
    if r then
      out[#out + 1] = 'transfer'
      out[#out + 1] = t_json(r)
    end
  end
  return out
end

-- transfer_get_many answers the records of req.ids found here.
TREADS.transfer_get_many = function(req)
  if type(req.ids) ~= 'table' or #req.ids > 1000 then return fail('INVALID', 'ids') end
  return t_records(req.ids)
end

-- Upkeep (no events: no stock changes). transfer_forget deletes, at the
-- source, the marker of a transfer whose record is being deleted (status
-- req.status): once returned, or shipped when the transfer was received; it
-- answers kept 1 when the marker must stay (a cancel's return not done).
-- transfer_prune deletes a finished record and its index entries.
TREADS.transfer_forget = function(req)
  if type(req.id) ~= 'string' or req.id == '' then return fail('INVALID', 'id') end
  local key = transfer_out_key(req.id)
  local m = t_load(key, req.id)
  if m then
    if not (m.s == 'returned' or (m.s == 'shipped' and req.status == 'received')) then
      return { 'kept', '1' }
    end
    redis.call('DEL', key)
    redis.call('ZREM', store_transfers_key(m.fr), req.id)
  end
  return {}
end

TREADS.transfer_prune = function(req)
  if type(req.id) ~= 'string' or req.id == '' then return fail('INVALID', 'id') end
  local key = transfer_key(req.id)
  local r = t_load(key, req.id)
  redis.call('ZREM', transfer_done_key(), req.id)
  if not r then return {} end
  if r.s == 'in_transit' then return t_reply(r) end
  redis.call('DEL', key)
  redis.call('ZREM', transfers_key(), req.id)
  redis.call('ZREM', store_transfers_key(r.to), req.id)
  return t_reply(r)
end

-- transfer_open answers the in-transit transfers to req.store.
TREADS.transfer_open = function(req)
  if not is_id(req.store) then return fail('INVALID', 'store') end
  local ids = redis.call('SMEMBERS', store_incoming_key(req.store))
  table.sort(ids)
  return t_records(ids)
end

-- transfer_list answers up to limit ids after the cursor "<created ms>:<id>"
-- in (created, id) order: of req.store's transfers (either end), or of the
-- partition's records when no store is named; the records of this
-- partition among them whole, the others (records in another partition)
-- as their id alone (member id), then next.
TREADS.transfer_list = function(req)
  local key = transfers_key()
  if req.store ~= nil and req.store ~= '' then
    if not is_id(req.store) then return fail('INVALID', 'store') end
    key = store_transfers_key(req.store)
  end
  local limit = req.limit
  if not is_int(limit, 1, 1000) then return fail('INVALID', 'limit') end
  local min, after = '-inf', nil
  if req.after ~= nil and req.after ~= '' then
    local ms, id = string.match(req.after, '^(%d+):(.+)$')
    if not ms then return fail('INVALID', 'cursor') end
    min, after = ms, id
  end
  -- ids of one created ms sort by id (ZRANGE's order among equal scores)
  local got = redis.call('ZRANGE', key, min, '+inf', 'BYSCORE', 'WITHSCORES', 'LIMIT', 0, limit + 1000)
  local out, n, last = {}, 0, ''
  for i = 1, #got, 2 do
    local id, sc = got[i], got[i + 1]
    if not (after and sc == min and id <= after) then
      if n == limit then
        out[#out + 1] = 'next'
        out[#out + 1] = last
        return out
      end
      local r = t_load(transfer_key(id), id)
      if r then
        out[#out + 1] = 'transfer'
        out[#out + 1] = t_json(r)
      else
        out[#out + 1] = 'id'
        out[#out + 1] = id
      end
      n = n + 1
      last = sc .. ':' .. id
    end
  end
  out[#out + 1] = 'next'
  out[#out + 1] = ''
  return out
end

-- Repairs, run by the rebuild on a partition that is not ready yet
-- (engine/transfer_restore.go): each writes its events like the step it
-- makes up for, so the ledger gets them, and is idempotent.
local TFIX = {}

TFIX.transfer_reship = function(req)
  local err = t_check_head(req, true)
  if err then return err end
  local key = transfer_out_key(req.id)
  local prev = t_load(key, req.id)
  if prev then return t_reply(prev) end
  if not is_int(req.created_at, 1, 1e14) then return fail('INVALID', 'created_at') end
  local r = { id = req.id, fr = req.from, to = req.to, s = 'shipped', l = {}, ea = req.expected_at or 0,
    ref = req.reference or '', ca = req.created_at, ua = NOW }
  for i = 1, #req.lines do
    r.l[i] = { req.lines[i][1], req.lines[i][2], 0, 0, 0 }
  end
  local tr = t_json(r)
  for i = 1, #req.lines do
    local q = req.lines[i][2]
    local it = load(req.from, req.lines[i][1]) or t_new_item(req.from, req.lines[i][1])
    it.oh, it.v, it.ua = it.oh - q, it.v + 1, NOW
    save(it)
    t_emit('TRANSFER_OUT', it, -q, {}, req, r.id, i == 1 and tr or nil)
  end
  t_save(key, r)
  redis.call('ZADD', store_transfers_key(r.fr), r.ca, r.id)
  return t_reply(r)
end

TFIX.transfer_recancel = function(req)
  if type(req.id) ~= 'string' or req.id == '' then return fail('INVALID', 'id') end
  local key = transfer_key(req.id)
  local r = t_load(key, req.id)
  if not r then return fail('NOT_FOUND', 'transfer ' .. req.id) end
  if r.s ~= 'in_transit' then return t_reply(r) end
  local err = t_cancel(key, r, req)
  if err then return err end
  return t_reply(r)
end
