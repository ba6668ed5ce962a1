-- prelude.lua: shared by every script. Each script is this prelude, then the
-- operation files it needs, then begin_call(), then a short main (see
-- luascripts.go). As a function library (FCALL) the prelude and the
-- operation files run once, when the library is loaded, and KEYS and ARGV
-- are locals the function sets at each call: so nothing here but
-- begin_call may read KEYS, ARGV or a global outside a function, and every
-- local a call changes is declared here and set by begin_call; an
-- operation file declares no local of its own that a call changes
-- (library_test.go).
--
-- Calling convention (every script but unlock):
--   KEYS[1]  <prefix>:{p}:events, the partition's stream; every other key of
--            the partition is derived from it (same hash tag, same slot), by
--            the key helpers below.
--   ARGV[1]  now, unix milliseconds (the engine's clock)
--   ARGV[2]  TTL in ms of an idempotency record made from a client key
--   ARGV[3]  TTL in ms of an idempotency record made from a generated op id
--   ARGV[4]  stream high watermark (entries); 0 disables backpressure
--   ARGV[5]  retention in ms of a finished reservation
--   ARGV[6…] the script's request(s), each one JSON object read by member
--            name (req.<name>); engine/op.go defines the write request's
--            members (type request), the other scripts' requests are defined
--            beside the engine method that sends them, and a test
--            (engine/protocol_test.go) checks that every member the engine
--            can send is read here and every member read here is sent.
--
-- Requests. A write request's members: op (set, adjust, checkout, reserve,
-- commit, release, move, fulfil), store, sku, on_hand, reorder_point,
-- max_per_customer and safety_stock (-1 clears), expect_version (0: the item
-- must not exist), delta, state (adjust: the state the delta goes to; absent:
-- available), from, to and qty (move), channel ('pos': a till sale, which
-- may sell into safety_stock), fulfilment ('later': a checkout or commit
-- moves the units to committed instead of taking them off on_hand), lines
-- [[sku, qty], …] (the shape a reservation stores in its field l), customer,
-- reservation_id, ttl_ms, reason, principal, op_id, idem_key (the record key
-- suffix of a client key), fingerprint, generated (op_id was generated, no
-- client key), sticky (record a refusal too).
--
-- Replies. A result is a flat array of name/value pairs, every value a
-- string (a replay returns what was stored, so a value never changes type);
-- engine/reply.go decodes it by name and refuses a name it does not know.
-- The names:
--   replayed       '1': the stored result of an earlier request with the same
--                  operation id (absent: applied now)
--   created        '1': set created the item (absent: it existed)
--   item           a packed item, once per item, in order (see push_item)
--   reservation_id, store, customer, status, expires_at_ms, lines
--                  a reservation (lines as JSON [[sku, qty], …])
--   skus, stores   (read) an array of ids
--   expired, corrupt
--                  (expire) a reservation id, once per hold
--   restored       '1' (restore, restore_reservation)
--   error          (batch) 'CODE detail' of a refused request
-- A refusal is the error table {err = CODE, detail = text}; a single
-- request's script turns it into redis.error_reply('CODE detail'), the batch
-- into {'error', 'CODE detail'}.

-- Keys. Every key a script touches is named by one of these helpers, each
-- the mirror of the engine/keys.go function named beside it; a test in
-- engine (keys_lua_test.go) runs this block and compares every name with
-- Go's. BASE is "<prefix>:{p}:" (KeyBase), taken from KEYS[1] (StreamKey).
-- Like every local a call changes, EVENTS and BASE are set by begin_call
-- (end of this file).
local EVENTS, BASE

-- store_key: StoreKey, the hash of a store's items: field SKU, value the
-- packed item "on_hand,reserved,version,updated_at[,reorder_point,
-- max_per_customer[,committed,damaged,quality_control,display,incoming,
-- safety_stock]]" (-1: unset; the states only when one is held or safety
-- stock is set). One hash per store keeps an item near 80 bytes.
local function store_key(store) return BASE .. 'st:' .. store end
-- customer_units_key: customerUnitsKey, field customer, value units counted.
local function customer_units_key(store, sku) return BASE .. 'cu:' .. store .. ':' .. sku end
-- reservation_key: reservationKey.
local function reservation_key(id) return BASE .. 'r:' .. id end
-- ready_key: ReadyKey, the partition's readiness marker.
local function ready_key() return BASE .. 'ready' end
-- stores_key: storesKey, the set of the partition's stores.
local function stores_key() return BASE .. 'stores' end
-- expiries_key: expiriesKey, held reservation ids by expires_at.
local function expiries_key() return BASE .. 'rexp' end
-- idem_key: idemKey, the record of a request with a client key; suffix is
-- "<len(principal)>:<principal>:<op id>" (idemKeyOf), sent as idem_key.
local function idem_key(suffix) return BASE .. 'idem:' .. suffix end
-- generated_idem_key: generatedIdemKey, the record of a request with a
-- generated operation id.
local function generated_idem_key(op_id) return BASE .. 'idem:g:' .. op_id end
-- batch_key: batchKey, the record of a batch call's results.
local function batch_key(id) return BASE .. 'idem:b:' .. id end
-- transfer_key: transferKey, a transfer's record, in its destination's
-- partition (transfer.lua).
local function transfer_key(id) return BASE .. 't:' .. id end
-- transfer_out_key: transferOutKey, a transfer's outbound marker, in its
-- source's partition.
local function transfer_out_key(id) return BASE .. 'to:' .. id end
-- transfers_key: transfersKey, the partition's transfer records by created ms.
local function transfers_key() return BASE .. 'tx' end
-- store_transfers_key: storeTransfersKey, the transfers from or to a store
-- by created ms.
local function store_transfers_key(store) return BASE .. 'ts:' .. store end
-- store_incoming_key: storeIncomingKey, the ids of the in-transit transfers
-- to a store.
local function store_incoming_key(store) return BASE .. 'tin:' .. store end
-- transfer_pending_key: TransferPendingKey, the steps a TransferWorker runs
-- once due: member "<step>:<id>", score due ms.
local function transfer_pending_key() return BASE .. 'tpend' end

-- ARGV[1..5], set by begin_call
local NOW, IDEM_TTL, OP_TTL, HIGH_WATER, RES_RETENTION, NOW_S
local MAX_ON_HAND = 1000000000000
local MAX_QTY = 1000000000

local OPS = {}

-- S converts an integer to its string once per script. Every number handed
-- to redis.call or table.concat is formatted with sprintf("%.17g"), which was
-- a quarter of all instructions of a checkout; a batch repeats most values
-- (deltas, zeros, settings), so it formats each only once, and with '%d',
-- which costs half of tostring's floating-point path (callgrind: 2.2k
-- against 4.6k instructions) and is exact for every integer a double holds.
local SCACHE -- begin_call: { [-1] = '-1', [0] = '0', [1] = '1' }
local sformat -- begin_call: string.format (a library's load sees no string)
local function S(n)
  local s = SCACHE[n]
  if not s then
    s = sformat('%d', n)
    SCACHE[n] = s
  end
  return s
end

-- istr formats an integer. Only for error details: redis.call takes numbers
-- as they are and formats integers exactly, far faster than string.format.
local function istr(n)
  return string.format('%d', n)
end

local function fail(code, detail)
  return { err = code, detail = detail or '' }
end

local function is_int(n, lo, hi)
  return type(n) == 'number' and n == math.floor(n) and n >= lo and n <= hi
end

local ID_OK -- begin_call: {}

-- is_id checks a store, SKU or customer id (memoised: a batch often names
-- the same ids many times).
local function is_id(s)
  if ID_OK[s] then
    return true
  end
  local ok = type(s) == 'string' and #s >= 1 and #s <= 64 and string.find(s, '^[A-Za-z0-9][A-Za-z0-9._-]*$') ~= nil
  if ok then
    ID_OK[s] = true
  end
  return ok
end

local READY -- begin_call: nil

-- ready reports whether the partition has its readiness marker. Nothing in
-- a write script removes it, so one check serves the whole script.
local function ready()
  if READY == nil then
    READY = redis.call('EXISTS', ready_key()) == 1
  end
  return READY
end

-- stream entries: read once per script, then counted as events are added
local XLEN -- begin_call: nil

-- unpack_item decodes a packed item. An item has the counts oh (on_hand),
-- rs (reserved), the states of docs/design.md §2.1 cm (committed), dm
-- (damaged), qc (quality_control), dp (display), inc (incoming, not part of
-- on_hand), and the settings rp, mpc, ss (safety_stock), -1 when unset.
local function unpack_item(store, sku, v)
  local oh, rs, ver, ua, rest = string.match(v, '^(%d+),(%d+),(%d+),(%d+)(.*)$')
  if not oh then
    error('CORRUPT item ' .. store .. '/' .. sku .. ' is malformed')
  end
  local it = {
    store = store, sku = sku,
    oh = tonumber(oh), rs = tonumber(rs), v = tonumber(ver), ua = tonumber(ua),
    rp = -1, mpc = -1, cm = 0, dm = 0, qc = 0, dp = 0, inc = 0, ss = -1,
  }
  if rest ~= '' then
    local a, b, st = string.match(rest, '^,(%-?%d+),(%-?%d+)(.*)$')
    if not a then
      error('CORRUPT item ' .. store .. '/' .. sku .. ' is malformed')
    end
    it.rp, it.mpc = tonumber(a), tonumber(b)
    if st ~= '' then
      local cm, dm, qc, dp, inc, ss = string.match(st, '^,(%d+),(%d+),(%d+),(%d+),(%d+),(%-?%d+)$')
      if not cm then
        error('CORRUPT item ' .. store .. '/' .. sku .. ' is malformed')
      end
      it.cm, it.dm, it.qc, it.dp, it.inc, it.ss =
        tonumber(cm), tonumber(dm), tonumber(qc), tonumber(dp), tonumber(inc), tonumber(ss)
    end
  end
  return it
end

-- has_states reports whether an item holds units in a state or has a
-- safety stock: only then do the packed item, its reply and its events carry
-- the states (a plain item keeps its short forms).
local function has_states(it)
  return it.cm ~= 0 or it.dm ~= 0 or it.qc ~= 0 or it.dp ~= 0 or it.inc ~= 0 or it.ss >= 0
end

-- states_str packs the states and safety stock: ",cm,dm,qc,dp,inc,ss".
local function states_str(it)
  return ',' .. S(it.cm) .. ',' .. S(it.dm) .. ',' .. S(it.qc) .. ',' .. S(it.dp) .. ',' .. S(it.inc) .. ',' .. S(it.ss)
end

-- held: the units of on_hand that are not for sale: reserved, committed,
-- damaged, quality_control, display. Invariant: held(it) <= it.oh.
local function held(it)
  return it.rs + it.cm + it.dm + it.qc + it.dp
end

-- available is the one rule of docs/design.md §2.1 (engine.Available in Go):
-- on_hand less what is held, less safety_stock unless the sale is at the
-- till (pos), and never below 0.
local function available(it, pos)
  local a = it.oh - held(it)
  if not pos and it.ss > 0 then
    a = a - it.ss
  end
  if a < 0 then
    return 0
  end
  return a
end

-- pack encodes an item.
local function pack(it)
  local ua = NOW_S
  if it.ua ~= NOW then
    ua = S(it.ua)
  end
  local s = S(it.oh) .. ',' .. S(it.rs) .. ',' .. S(it.v) .. ',' .. ua
  if has_states(it) then
    s = s .. ',' .. S(it.rp) .. ',' .. S(it.mpc) .. states_str(it)
  elseif it.rp >= 0 or it.mpc >= 0 then
    s = s .. ',' .. S(it.rp) .. ',' .. S(it.mpc)
  end
  return s
end

-- STATE_FIELD maps a state's name to its field in an item; available is
-- no field (what no state holds).
local STATE_FIELD = { committed = 'cm', damaged = 'dm', quality_control = 'qc', display = 'dp' }

-- Items are read once per script and written once at its end: CACHE holds
-- every item loaded or changed, DIRTY the keys of changed ones, and flush()
-- writes them, one HSET per store. A batch selling one hot SKU a hundred
-- times reads and writes it once. Every script that saves must flush.
local CACHE, DIRTY -- begin_call: {}, {}

-- load reads an item, or returns nil when it does not exist.
local function load(store, sku)
  local ck = store .. ':' .. sku
  local it = CACHE[ck]
  if it then
    return it
  end
  local v = redis.call('HGET', store_key(store), sku)
  if not v then
    return nil
  end
  it = unpack_item(store, sku, v)
  it.ck = ck
  CACHE[ck] = it
  return it
end

local function save(it)
  local ck = it.ck
  if not ck then
    ck = it.store .. ':' .. it.sku
    it.ck = ck
  end
  CACHE[ck] = it
  if not DIRTY[ck] then
    DIRTY[ck] = true
    DIRTY[#DIRTY + 1] = ck
  end
end

local function flush()
  local by_store = {}
  local stores = {}
  for i = 1, #DIRTY do
    local it = CACHE[DIRTY[i]]
    local args = by_store[it.store]
    if not args then
      args = {}
      by_store[it.store] = args
      stores[#stores + 1] = it.store
    end
    args[#args + 1] = it.sku
    args[#args + 1] = pack(it)
  end
  for i = 1, #stores do
    redis.call('HSET', store_key(stores[i]), unpack(by_store[stores[i]]))
  end
  DIRTY = {}
end

-- index records a new item's store in the partition's store set, once per
-- store and call (INDEXED: a bulk set creates many items of a few stores in
-- one batch call).
local INDEXED -- begin_call: {}
local function index(it)
  if not INDEXED[it.store] then
    redis.call('SADD', stores_key(), it.store)
    INDEXED[it.store] = true
  end
end

-- push_item appends an item to a result, under the name item, as one packed
-- string "store,sku,on_hand,reserved,version,reorder_point,max_per_customer,
-- updated_at_ms[,committed,damaged,quality_control,display,incoming,
-- safety_stock]" (-1: unset; the states only when has_states): one value instead of eight, since a reply costs
-- per element and a batch returns many items. The packing is part of the
-- stored format: results are kept as idempotency records for a day
-- (engine.parseReplyItem reads it).
local function push_item(out, it)
  local ua = NOW_S
  if it.ua ~= NOW then
    ua = S(it.ua)
  end
  local n = #out
  out[n + 1] = 'item'
  local v = it.store .. ',' .. it.sku .. ',' .. S(it.oh) .. ',' .. S(it.rs) .. ',' .. S(it.v) .. ',' ..
    S(it.rp) .. ',' .. S(it.mpc) .. ',' .. ua
  if has_states(it) then
    v = v .. states_str(it)
  end
  out[n + 2] = v
end

-- emit appends the one event of a change, as one field e = "store<TAB>sku
-- <TAB>type<TAB>n<TAB>reservation id<TAB>customer<TAB>operation id<TAB>
-- reason<TAB>principal[<TAB>mv]" (docs/design.md §5.2). One field instead
-- of ten: XADD's cost, each consumer group's XREADGROUP reply and the
-- readers' parsing are per field (callgrind: an XADD of one field costs 60%
-- of one of ten). n = "version,delta_on_hand,delta_reserved,on_hand,
-- reserved,reorder_point,max_per_customer,time_ms,expires_at_ms[,committed,
-- damaged,quality_control,display,incoming,safety_stock,delta_committed,
-- delta_damaged,delta_quality_control,delta_display,delta_incoming]": the
-- states and their deltas are there when the item has states (has_states)
-- or the change moved one (sd: a table of deltas by field cm, dm, qc, dp,
-- inc; nil when none). A MOVE adds mv = "from,to,qty". No id holds a tab
-- and a reason holds no control character (run_write); a text that holds a
-- tab all the same (a principal, or a caller other than the engine) makes
-- the entry take the older form of one field per text, which the readers
-- also take. This is the stream's stored format, which the persister reads
-- (engine.ParseEvent).
local function emit(typ, it, doh, drs, rid, cust, req, x, sd, mv)
  local n = S(it.v) .. ',' .. S(doh) .. ',' .. S(drs) .. ',' .. S(it.oh) .. ',' .. S(it.rs) .. ',' ..
    S(it.rp) .. ',' .. S(it.mpc) .. ',' .. NOW_S .. ',' .. S(x or 0)
  if sd or has_states(it) then
    sd = sd or {}
    n = n .. states_str(it) .. ',' .. S(sd.cm or 0) .. ',' .. S(sd.dm or 0) .. ',' .. S(sd.qc or 0) .. ',' ..
      S(sd.dp or 0) .. ',' .. S(sd.inc or 0)
  end
  rid, cust = rid or '', cust or ''
  local op, rsn, pr = req.op_id or '', req.reason or '', req.principal or ''
  local text = rid .. cust .. op .. rsn .. pr
  if string.find(text, '\t', 1, true) then
    if mv then
      redis.call('XADD', EVENTS, '*', 's', it.store, 'k', it.sku, 't', typ, 'n', n,
        'rid', rid, 'c', cust, 'op', op, 'rsn', rsn, 'pr', pr, 'mv', mv)
    else
      redis.call('XADD', EVENTS, '*', 's', it.store, 'k', it.sku, 't', typ, 'n', n,
        'rid', rid, 'c', cust, 'op', op, 'rsn', rsn, 'pr', pr)
    end
  else
    local e = it.store .. '\t' .. it.sku .. '\t' .. typ .. '\t' .. n .. '\t' .. rid .. '\t' .. cust .. '\t' ..
      op .. '\t' .. rsn .. '\t' .. pr
    if mv then
      e = e .. '\t' .. mv
    end
    redis.call('XADD', EVENTS, '*', 'e', e)
  end
  if XLEN then
    XLEN = XLEN + 1
  end
end

-- Purchase limits. A limit counts the units a customer held or bought while
-- the item had one: a sale or hold of an item with a limit adds its units to
-- the customer's usage (hash customer_units_key, field customer); a hold
-- records per line the units it counted (reservation field u), and a release
-- or expiry gives back exactly those, so units never counted are never
-- subtracted; a commit keeps them counted. Clearing a limit keeps the counts,
-- so setting it again sees what was held or bought under the earlier one. An
-- item without a limit costs a sale no Redis call here.

-- usage_add adds n (negative: gives back) to a customer's usage of an item.
local function usage_add(it, cust, n)
  if cust == nil or cust == '' or n == 0 then
    return
  end
  local k = customer_units_key(it.store, it.sku)
  local v = redis.call('HINCRBY', k, cust, n)
  if v <= 0 then
    redis.call('HDEL', k, cust)
  end
end

local function usage(it, cust)
  return tonumber(redis.call('HGET', customer_units_key(it.store, it.sku), cust) or '0')
end

-- check_lines validates the lines of a checkout or reservation and loads their
-- items. It returns the items or an error table. pos: a till sale, which may
-- sell the safety stock too.
local function check_lines(req, pos)
  if not is_id(req.store) then
    return nil, fail('INVALID', 'store')
  end
  local lines = req.lines
  if type(lines) ~= 'table' or #lines < 1 or #lines > 100 then
    return nil, fail('INVALID', 'lines')
  end
  local cust = req.customer or ''
  if cust ~= '' and not is_id(cust) then
    return nil, fail('INVALID', 'customer')
  end
  local seen = {}
  local items = {}
  for i = 1, #lines do
    if type(lines[i]) ~= 'table' then
      return nil, fail('INVALID', 'lines')
    end
    local sku, qty = lines[i][1], lines[i][2]
    if not is_id(sku) then
      return nil, fail('INVALID', 'lines.sku')
    end
    if not is_int(qty, 1, MAX_QTY) then
      return nil, fail('INVALID', 'lines.qty')
    end
    if seen[sku] then
      return nil, fail('INVALID', 'lines.duplicate ' .. sku)
    end
    seen[sku] = true
    local it = load(req.store, sku)
    if not it then
      return nil, fail('NOT_FOUND', sku)
    end
    items[i] = it
  end
  for i = 1, #lines do
    local it = items[i]
    if it.mpc >= 0 then
      if cust == '' then
        return nil, fail('CUSTOMER_REQUIRED', it.sku)
      end
      local already = usage(it, cust)
      if already + lines[i][2] > it.mpc then
        return nil, fail('PURCHASE_LIMIT', cjson.encode({ sku = it.sku, limit = it.mpc, already = already }))
      end
    end
  end
  local short = {}
  for i = 1, #lines do
    local it = items[i]
    local avail = available(it, pos)
    if lines[i][2] > avail then
      short[#short + 1] = { sku = it.sku, requested = lines[i][2], available = avail }
    end
  end
  if #short > 0 then
    return nil, fail('INSUFFICIENT', cjson.encode(short))
  end
  return items, nil
end

-- load_reservation reads a reservation: hash fields st store, c customer,
-- s status, l lines JSON [[sku, qty], …] (kept as read: lj), x expires_at
-- ms, u per line the units counted against the customer's purchase limit (a
-- hold that counted none has no u).
local function load_reservation(id)
  local h = redis.call('HMGET', reservation_key(id), 'st', 'c', 's', 'l', 'x', 'u')
  if not h[1] then
    return nil
  end
  local u = nil
  if h[6] then
    u = cjson.decode(h[6])
  end
  return { id = id, store = h[1], customer = h[2] or '', status = h[3], lj = h[4], lines = cjson.decode(h[4]),
    x = tonumber(h[5]), u = u }
end

-- push_reservation appends a reservation's fields to a result.
local function push_reservation(out, r)
  local n = #out
  out[n + 1] = 'reservation_id'
  out[n + 2] = r.id
  out[n + 3] = 'store'
  out[n + 4] = r.store
  out[n + 5] = 'customer'
  out[n + 6] = r.customer
  out[n + 7] = 'status'
  out[n + 8] = r.status
  out[n + 9] = 'expires_at_ms'
  out[n + 10] = S(r.x)
  out[n + 11] = 'lines'
  out[n + 12] = r.lj
end

-- finish_reservation gives a held reservation's units back (RELEASE or
-- EXPIRE), with the units it counted against the customer's purchase
-- limits, or sells them (COMMIT), which keeps them counted. The caller has
-- checked that it is held. later: a COMMIT moves the units to committed
-- (to be handed over by a fulfilment), on_hand unchanged.
local function finish_reservation(r, typ, status, req, later)
  local items = {}
  for i = 1, #r.lines do
    local it = load(r.store, r.lines[i][1])
    if not it or it.rs < r.lines[i][2] or it.oh < r.lines[i][2] or
      (r.u and not is_int(r.u[i], 0, r.lines[i][2])) then
      return nil, fail('CORRUPT', 'reservation ' .. r.id .. ' line ' .. r.lines[i][1])
    end
    items[i] = it
  end
  for i = 1, #r.lines do
    local it, q = items[i], r.lines[i][2]
    local doh, sd = 0, nil
    if typ == 'COMMIT' then
      if later then
        it.cm = it.cm + q
        sd = { cm = q }
      else
        doh = -q
      end
    elseif r.u then
      usage_add(it, r.customer, -r.u[i])
    end
    it.oh = it.oh + doh
    it.rs = it.rs - q
    it.v = it.v + 1
    it.ua = NOW
    save(it)
    emit(typ, it, doh, -q, r.id, r.customer, req, nil, sd)
  end
  r.status = status
  local k = reservation_key(r.id)
  redis.call('HSET', k, 's', status)
  redis.call('ZREM', expiries_key(), r.id)
  redis.call('PEXPIRE', k, RES_RETENTION)
  return items, nil
end

-- Idempotency records. A request carries either a client key scoped by
-- principal (idem_key, with the request's fingerprint) or a generated
-- operation id (generated = true; the record is named by op_id). The record
-- is the fingerprint, a newline and the result, its elements joined by tabs
-- (no result element holds a tab); a replay returns them with replayed '1'
-- in front. A refusal recorded for a sticky request is '!CODE detail' after
-- the newline; the tombstone the rebuild writes is '*\n'.
local function record_key_of(req)
  if req.generated then
    return generated_idem_key(req.op_id)
  end
  return idem_key(req.idem_key)
end

local function split_tabs(s, out)
  local i = 1
  while true do
    local j = string.find(s, '\t', i, true)
    if not j then
      out[#out + 1] = string.sub(s, i)
      return out
    end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end

-- BATCHED is set by the batch script: its one record covers the requests
-- with generated ids.
local BATCHED -- begin_call: false

local function idem_check(req)
  if req.generated and BATCHED then
    return nil
  end
  if not req.generated and (not req.idem_key or req.idem_key == '') then
    return nil
  end
  local v = redis.call('GET', record_key_of(req))
  if not v then
    return nil
  end
  if string.sub(v, 1, 2) == '*\n' then
    -- a tombstone restored from the ledger after Redis lost its data: the
    -- request was applied, its response is gone
    return fail('ALREADY_APPLIED', '')
  end
  local sep = string.find(v, '\n', 1, true)
  if string.sub(v, 1, sep - 1) ~= (req.fingerprint or '') then
    return fail('IDEMPOTENCY_MISMATCH', '')
  end
  if string.sub(v, sep + 1, sep + 1) == '!' then
    -- a refusal recorded for a sticky request: answer it again
    local code, detail = string.match(v, '^!(%S+) ?(.*)$', sep + 1)
    return fail(code, detail)
  end
  return split_tabs(string.sub(v, sep + 1), { 'replayed', '1' })
end

local function idem_store(req, res)
  local ttl = IDEM_TTL
  if req.generated then
    if BATCHED then
      return
    end
    ttl = OP_TTL
  elseif not req.idem_key or req.idem_key == '' then
    return
  end
  redis.call('SET', record_key_of(req), (req.fingerprint or '') .. '\n' .. table.concat(res, '\t'), 'PX', ttl)
end

-- idem_store_refusal records the refusal of a sticky request (a line of a
-- keyed bulk request) under its key, so a retry answers it again.
local function idem_store_refusal(req, res)
  if req.idem_key and req.idem_key ~= '' then
    redis.call('SET', record_key_of(req), (req.fingerprint or '') .. '\n!' .. res.err .. ' ' .. res.detail, 'PX', IDEM_TTL)
  end
end

-- run_write wraps every write: readiness, idempotency, backpressure, then the
-- operation itself.
local function run_write(req)
  if not ready() then
    return fail('NOT_READY', '')
  end
  local fn = OPS[req.op]
  if not fn then
    return fail('INVALID', 'operation')
  end
  -- the engine checks free text fully; the script still refuses what the
  -- ledger cannot store (NUL) and ASCII controls, whoever calls it
  local rsn = req.reason
  if rsn ~= nil and (type(rsn) ~= 'string' or #rsn > 1024 or string.find(rsn, '[%z\1-\31\127]')) then
    return fail('INVALID', 'reason')
  end
  local prev = idem_check(req)
  if prev then
    return prev
  end
  if HIGH_WATER > 0 then
    if XLEN == nil then
      XLEN = redis.call('XLEN', EVENTS)
    end
    if XLEN >= HIGH_WATER then
      return fail('BACKPRESSURE', '')
    end
  end
  local res = fn(req)
  if res.err then
    if req.sticky then
      idem_store_refusal(req, res)
    end
    return res
  end
  idem_store(req, res)
  return res
end

-- begin_call sets every local a call reads or changes from KEYS and ARGV,
-- and is the first thing every call runs (luascripts.go): a script run with
-- EVALSHA runs this whole file each call, but a function (FCALL) runs it
-- once, when its library is loaded, and keeps these locals between calls,
-- so nothing may be left of an earlier call. A local added above that a
-- call changes must be set here too.
local function begin_call()
  EVENTS = KEYS[1]
  BASE = string.sub(EVENTS, 1, #EVENTS - 6)
  NOW = tonumber(ARGV[1])
  IDEM_TTL = tonumber(ARGV[2])
  OP_TTL = tonumber(ARGV[3])
  HIGH_WATER = tonumber(ARGV[4])
  RES_RETENTION = tonumber(ARGV[5])
  NOW_S = ARGV[1]
  SCACHE = { [-1] = '-1', [0] = '0', [1] = '1' }
  sformat = string.format
  ID_OK = {}
  READY = nil
  XLEN = nil
  CACHE, DIRTY = {}, {}
  INDEXED = {}
  BATCHED = false
end
