// Package luascripts holds the Lua sources of every stock operation, embedded
// in the binary, and composes them into the scripts the engine runs with
// EVALSHA.
//
// Every script is prelude.lua, then the operation files it needs, then a short
// main. The calling convention is documented at the top of prelude.lua.
package luascripts

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed *.lua
var files embed.FS

// WriteOps returns the write operations, each a script of its own and all
// in the batch script.
func WriteOps() []string { return append([]string(nil), writeOps...) }

// writeOps are the operations every write script can dispatch to, by the "op"
// member of its request.
var writeOps = []string{"set", "adjust", "checkout", "reserve", "commit", "release", "move", "fulfil"}

// singleMain runs one write request (ARGV[6]) and answers its result, or
// its refusal as an error reply "CODE detail".
const singleMain = `
local res = run_write(cjson.decode(ARGV[6]))
flush()
if res.err then
  return redis.error_reply(res.err .. ' ' .. res.detail)
end
return res
`

// batchMain runs each request on its own. ARGV[6] is the batch id: the
// batch's results are stored under it (for OP_TTL), one line each, so a
// retry of the whole call after a lost reply returns them again and applies
// nothing; that one record covers every request with a generated id. A
// request with a client key keeps its own record. A request that raises an
// error (malformed, or stored state that fails to parse) fails alone: every
// operation validates before its first write, so it wrote nothing. The
// reply holds one result per request, in order; a refused request's result
// is {'error', 'CODE detail'}.
const batchMain = `
local bkey = batch_key(ARGV[6])
local prev = redis.call('GET', bkey)
if prev then
  local out = {}
  for line in string.gmatch(prev, '[^\n]+') do
    out[#out + 1] = split_tabs(line, {})
  end
  return out
end
BATCHED = true
local out = {}
local function run_one(a)
  return run_write(cjson.decode(a))
end
for i = 7, #ARGV do
  local ok, res = pcall(run_one, ARGV[i])
  if not ok then
    local msg = string.gsub(tostring(res), '[\t\n]', ' ')
    local code = string.match(msg, 'CORRUPT.*$')
    out[#out + 1] = { 'error', code or ('INVALID request: ' .. msg) }
  elseif res.err then
    out[#out + 1] = { 'error', res.err .. ' ' .. res.detail }
  else
    out[#out + 1] = res
  end
end
flush()
local lines = {}
for i = 1, #out do
  lines[i] = table.concat(out[i], '\t')
end
redis.call('SET', bkey, table.concat(lines, '\n'), 'PX', OP_TTL)
return out
`

// transferMain runs one request of transfer.lua (ARGV[6]): a rebuild's
// repair (TFIX, on a partition not ready yet), a read (TREADS, after the
// readiness check) or a step (through run_write, so a step has readiness,
// idempotency and backpressure like every write).
const transferMain = `
local req = cjson.decode(ARGV[6])
local res
local rd = TREADS[req.op]
local fx = TFIX[req.op]
if fx then
  res = fx(req)
elseif rd then
  if not ready() then
    res = fail('NOT_READY', '')
  else
    res = rd(req)
  end
else
  res = run_write(req)
end
flush()
if res.err then
  return redis.error_reply(res.err .. ' ' .. res.detail)
end
return res
`

// Prelude returns the source of prelude.lua, which every composed script
// but unlock starts with: tests run it with a main of their own (the key
// helpers it defines mirror engine/keys.go).
func Prelude() (string, error) {
	b, err := files.ReadFile("prelude.lua")
	if err != nil {
		return "", fmt.Errorf("read prelude: %w", err)
	}
	return string(b), nil
}

// Source returns the full source of the named composed script: a write
// operation ("set", "adjust", "checkout", "reserve", "commit", "release",
// "move", "fulfil"), "batch", "expire", "restore", "restore_reservation",
// "read", "transfer", "unlock" or "extend".
func Source(name string) (string, error) {
	prelude, err := Prelude()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(prelude)
	b.WriteByte('\n')
	switch name {
	case "batch":
		for _, op := range writeOps {
			src, err := files.ReadFile(op + ".lua")
			if err != nil {
				return "", fmt.Errorf("read %s.lua: %w", op, err)
			}
			b.Write(src)
			b.WriteByte('\n')
		}
		b.WriteString(batchMain)
	case "set", "adjust", "checkout", "reserve", "commit", "release", "move", "fulfil":
		src, err := files.ReadFile(name + ".lua")
		if err != nil {
			return "", fmt.Errorf("read %s.lua: %w", name, err)
		}
		b.Write(src)
		b.WriteString(singleMain)
	case "transfer":
		src, err := files.ReadFile("transfer.lua")
		if err != nil {
			return "", fmt.Errorf("read transfer.lua: %w", err)
		}
		b.Write(src)
		b.WriteString(transferMain)
	case "unlock", "extend":
		src, err := files.ReadFile(name + ".lua")
		if err != nil {
			return "", fmt.Errorf("read %s.lua: %w", name, err)
		}
		return string(src), nil
	case "expire", "restore", "restore_reservation", "read":
		src, err := files.ReadFile(name + ".lua")
		if err != nil {
			return "", fmt.Errorf("read %s.lua: %w", name, err)
		}
		b.Write(src)
	default:
		return "", fmt.Errorf("unknown script %q", name)
	}
	return b.String(), nil
}
