// Package luascripts holds the Lua sources of every stock operation, embedded
// in the binary, and composes them into the scripts the engine runs with
// EVALSHA.
//
// Every script is prelude.lua, then the operation files it needs, then a short
// main. The calling convention is documented at the top of prelude.lua.
package luascripts

import (
	"context"
	"embed"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

//go:embed *.lua
var files embed.FS

// writeOps are the operations every write script can dispatch to, by the "op"
// member of its request.
var writeOps = []string{"set", "adjust", "checkout", "reserve", "commit", "release"}

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

// Set holds every script. Construct it with New; it is safe for concurrent use.
type Set struct {
	// Ops holds one script per write operation ("set", "adjust", "checkout",
	// "reserve", "commit", "release"), each running one request (ARGV[6]).
	Ops map[string]*redis.Script
	// Batch runs many independent write requests of one partition (ARGV[7…],
	// ARGV[6] the batch id) and returns one result or error per request.
	Batch *redis.Script
	// Expire expires due reservations of one partition (ARGV[6] its
	// request: the most to expire).
	Expire *redis.Script
	// Restore overwrites an item with state taken from the ledger (ARGV[6]
	// its request).
	Restore *redis.Script
	// RestoreReservation puts back an open reservation taken from the
	// ledger (ARGV[6] its request).
	RestoreReservation *redis.Script
	// Read runs the read operations (ARGV[6] the request naming one).
	Read *redis.Script
	// Unlock deletes a key only while it holds a given value (a lock's
	// token, an idempotency claim's fingerprint). It has no prelude.
	Unlock *redis.Script
}

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
// operation ("set", "adjust", "checkout", "reserve", "commit", "release"),
// "batch", "expire", "restore", "restore_reservation", "read" or "unlock".
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
	case "set", "adjust", "checkout", "reserve", "commit", "release":
		src, err := files.ReadFile(name + ".lua")
		if err != nil {
			return "", fmt.Errorf("read %s.lua: %w", name, err)
		}
		b.Write(src)
		b.WriteString(singleMain)
	case "unlock":
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

// New composes every script from the embedded sources.
func New() (*Set, error) {
	s := &Set{Ops: map[string]*redis.Script{}}
	for _, op := range writeOps {
		src, err := Source(op)
		if err != nil {
			return nil, err
		}
		s.Ops[op] = redis.NewScript(src)
	}
	for _, x := range []struct {
		name string
		dst  **redis.Script
	}{
		{"batch", &s.Batch}, {"expire", &s.Expire},
		{"restore", &s.Restore}, {"restore_reservation", &s.RestoreReservation}, {"read", &s.Read},
		{"unlock", &s.Unlock},
	} {
		src, err := Source(x.name)
		if err != nil {
			return nil, err
		}
		*x.dst = redis.NewScript(src)
	}
	return s, nil
}

// All returns every script of the set.
func (s *Set) All() []*redis.Script {
	all := []*redis.Script{s.Batch, s.Expire, s.Restore, s.RestoreReservation, s.Read, s.Unlock}
	for _, op := range writeOps {
		all = append(all, s.Ops[op])
	}
	return all
}

// Load loads every script into Redis' script cache. On a Redis Cluster
// go-redis sends SCRIPT LOAD to every master. Loading is an optimisation: Run
// falls back to EVAL on NOSCRIPT, so a restarted or flushed Redis needs no
// reload.
func (s *Set) Load(ctx context.Context, c redis.Scripter) error {
	for _, sc := range s.All() {
		if err := sc.Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	return nil
}
