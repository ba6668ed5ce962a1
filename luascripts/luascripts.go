// Package luascripts holds the Lua sources of every stock operation, embedded
// in the binary, and composes them into the scripts the engine runs, in two
// forms from the same sources: a script for EVALSHA (Source) and a Redis
// Functions library for FCALL (Library).
//
// Every script is prelude.lua, then the operation files it needs, then a short
// main. The calling convention is documented at the top of prelude.lua.
package luascripts

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
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

// Prelude returns the source of prelude.lua followed by the call to
// begin_call that starts every call: tests run it with a main of their own
// (the key helpers it defines mirror engine/keys.go).
func Prelude() (string, error) {
	b, err := files.ReadFile("prelude.lua")
	if err != nil {
		return "", fmt.Errorf("read prelude: %w", err)
	}
	return string(b) + beginCall, nil
}

// beginCall starts every call of a script that has the prelude: it sets
// the prelude's per-call locals from KEYS and ARGV.
const beginCall = "\nbegin_call()\n"

// parts returns what a composed script is made of besides the prelude:
// defs, the operation files (which, like the prelude, only define locals and
// functions), and main, run once per call after begin_call. A script
// without the prelude (unlock, extend) is all main.
func parts(name string) (defs, main string, prelude bool, err error) {
	read := func(file string) (string, error) {
		b, err := files.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", file, err)
		}
		return string(b), nil
	}
	var b strings.Builder
	switch name {
	case "batch":
		for _, op := range writeOps {
			src, err := read(op + ".lua")
			if err != nil {
				return "", "", false, err
			}
			b.WriteString(src)
			b.WriteByte('\n')
		}
		main = batchMain
	case "set", "adjust", "checkout", "reserve", "commit", "release", "move", "fulfil":
		src, err := read(name + ".lua")
		if err != nil {
			return "", "", false, err
		}
		b.WriteString(src)
		main = singleMain
	case "transfer":
		src, err := read("transfer.lua")
		if err != nil {
			return "", "", false, err
		}
		b.WriteString(src)
		main = transferMain
	case "unlock", "extend":
		src, err := read(name + ".lua")
		return "", src, false, err
	case "expire", "restore", "restore_reservation", "read":
		if main, err = read(name + ".lua"); err != nil {
			return "", "", false, err
		}
	default:
		return "", "", false, fmt.Errorf("unknown script %q", name)
	}
	return b.String(), main, true, nil
}

// Source returns the full source of the named composed script, as run with
// EVALSHA: a write operation ("set", "adjust", "checkout", "reserve",
// "commit", "release", "move", "fulfil"), "batch", "expire", "restore",
// "restore_reservation", "read", "transfer", "unlock" or "extend". It is
// Prelude() (the prelude and begin_call()), the operation files and main,
// so every call runs all of them.
func Source(name string) (string, error) {
	defs, main, prelude, err := parts(name)
	if err != nil {
		return "", err
	}
	if !prelude {
		return main, nil
	}
	prel, err := Prelude()
	if err != nil {
		return "", err
	}
	return prel + "\n" + defs + main, nil
}

// Library returns the named script in its other form, a Redis Functions
// library (FUNCTION LOAD, Redis 7), and the name of its one function (FCALL
// <function> 1 KEYS[1] ARGV…), which is also the library's name. The
// library runs the same defs once, when it is loaded; its function sets
// KEYS and ARGV from its parameters, runs begin_call and then the same main
// as Source. So a call skips defining the prelude's and the operations'
// functions (about 95k instructions of Redis per call of the batch script,
// callgrind).
//
// The name is "inv_<script>_<16 hex digits of the SHA-1 of the library's
// code>", so two builds whose scripts differ load libraries of different
// names that live side by side on one Redis: a rolling deploy never runs
// one build's code with the other's arguments.
func Library(name string) (code, function string, err error) {
	defs, main, prelude, err := parts(name)
	if err != nil {
		return "", "", err
	}
	// read writes nothing: flagged no-writes, it is not refused when Redis
	// is over maxmemory, like its EVALSHA form (the others, like a script
	// without flags, may write, and FCALL refuses them then up front
	// instead of at their first write).
	flags := ""
	if name == "read" {
		flags = ", flags = { 'no-writes' }"
	}
	var body string
	if prelude {
		prel, err := files.ReadFile("prelude.lua")
		if err != nil {
			return "", "", fmt.Errorf("read prelude: %w", err)
		}
		body = "local KEYS, ARGV\n" + string(prel) + "\n" + defs +
			"\nredis.register_function{ function_name = '%[1]s'" + flags + ", callback = function(keys, args)\n" +
			"KEYS, ARGV = keys, args\nbegin_call()\n" + main + "\nend }\n"
	} else {
		body = "redis.register_function{ function_name = '%[1]s', callback = function(KEYS, ARGV)\n" + main + "\nend }\n"
	}
	sum := sha1.Sum([]byte(body))
	function = "inv_" + name + "_" + hex.EncodeToString(sum[:8])
	return "#!lua name=" + function + "\n" + strings.ReplaceAll(body, "%[1]s", function), function, nil
}
