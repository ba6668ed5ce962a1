package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// helpFlag is one flag as `inventory <command> --help` documents it.
type helpFlag struct {
	command, name, env, def string
	alias                   bool
}

var (
	helpFlagRE = regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`)
	helpEnvRE  = regexp.MustCompile(`^\[(INVENTORY_[A-Z0-9_]+)(?:, default ([^;\]]*))?`)
)

// parseHelp returns the flags a command's --help documents; a flag without
// its variable has env "".
func parseHelp(t *testing.T, command, help string) []helpFlag {
	t.Helper()
	var out []helpFlag
	locs := helpFlagRE.FindAllStringSubmatchIndex(help, -1)
	for i, loc := range locs {
		end := len(help)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		f := helpFlag{command: command, name: help[loc[2]:loc[3]]}
		for _, line := range strings.Split(help[loc[1]:end], "\n") {
			if m := helpEnvRE.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
				f.env, f.def = m[1], m[2]
				f.alias = !strings.Contains(line, ", default") && strings.Contains(help[loc[1]:end], "same as --")
			}
		}
		out = append(out, f)
	}
	return out
}

// allHelpFlags runs every command's --help in-process, with no INVENTORY_*
// variable set, and returns the flags.
func allHelpFlags(t *testing.T) []helpFlag {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "INVENTORY_") {
			t.Setenv(k, "")
		}
	}
	var out []helpFlag
	for _, c := range commands() {
		code, _, help := runCmd(t, context.Background(), nil, c.name, "--help")
		require.Equal(t, 0, code, c.name)
		out = append(out, parseHelp(t, c.name, help)...)
	}
	return out
}

// readmeRow is a row of README's configuration table.
type readmeRow struct {
	env      string
	flags    []string
	commands []string
	def      string
}

// connecting are the commands that "all" stands for in the table.
var connecting = []string{"serve", "persist", "webhooks", "relay", "groups", "reconcile", "migrate", "seed", "bench"}

func readmeTable(t *testing.T) map[string]readmeRow {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	start := strings.Index(s, "\n## Configuration\n")
	require.Positive(t, start)
	s = s[start+1:]
	s = s[:strings.Index(s[3:], "\n## ")+3]
	code := regexp.MustCompile("`([^`]*)`")
	rows := map[string]readmeRow{}
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "| `INVENTORY_") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		require.GreaterOrEqual(t, len(cells), 5, line)
		r := readmeRow{env: strings.Trim(strings.TrimSpace(cells[0]), "`")}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			r.flags = append(r.flags, strings.TrimPrefix(m[1], "--"))
		}
		if cmds := strings.TrimSpace(cells[2]); cmds == "all" {
			r.commands = connecting
		} else {
			for _, c := range strings.Split(cmds, ",") {
				r.commands = append(r.commands, strings.TrimSpace(c))
			}
		}
		if d := strings.TrimSpace(cells[3]); d != "empty" {
			r.def = strings.Trim(d, "`")
		}
		_, dup := rows[r.env]
		require.False(t, dup, "%s twice in the table", r.env)
		rows[r.env] = r
	}
	require.NotEmpty(t, rows)
	return rows
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return slicesCompact(out)
}

func slicesCompact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Every flag of every command has an INVENTORY_* variable, and README's one
// table documents each variable with its flags, commands and default; the
// table names no variable the binary lacks, and the code names no variable
// that is not a flag's.
func TestEveryFlagHasAVariable(t *testing.T) {
	flags := allHelpFlags(t)
	byEnv := map[string][]helpFlag{}
	for _, f := range flags {
		require.NotEmpty(t, f.env, "inventory %s --%s has no INVENTORY_* variable", f.command, f.name)
		byEnv[f.env] = append(byEnv[f.env], f)
	}
	// A variable means one thing: one default wherever it appears, and one
	// flag name per command.
	for env, fs := range byEnv {
		perCommand := map[string]int{}
		def := ""
		for _, f := range fs {
			if !f.alias {
				perCommand[f.command]++
				if def == "" {
					def = f.def
				}
				require.Equal(t, def, f.def, "%s: inventory %s --%s has another default", env, f.command, f.name)
			}
		}
		for c, n := range perCommand {
			require.Equal(t, 1, n, "%s sets %d flags of inventory %s", env, n, c)
		}
	}

	table := readmeTable(t)
	for env, fs := range byEnv {
		row, ok := table[env]
		require.True(t, ok, "README's configuration table lacks %s", env)
		var names, cmds []string
		def := ""
		for _, f := range fs {
			names = append(names, f.name)
			cmds = append(cmds, f.command)
			if !f.alias {
				def = f.def
			}
		}
		require.Equal(t, sorted(names), sorted(row.flags), "README: the flags of %s", env)
		require.Equal(t, sorted(cmds), sorted(row.commands), "README: the commands of %s", env)
		require.Equal(t, def, row.def, "README: the default of %s", env)
	}
	for env := range table {
		require.Contains(t, byEnv, env, "README documents %s, which no flag has", env)
	}

	// The code reads the environment through the flags only.
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	named := regexp.MustCompile(`INVENTORY_[A-Z0-9_]*[A-Z0-9]`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, env := range named.FindAllString(string(b), -1) {
			require.Contains(t, byEnv, env, "%s names %s, which no flag has", f, env)
		}
		if f != "main.go" {
			require.NotContains(t, string(b), "os.LookupEnv", f)
		}
	}
}

// secretEnv are secrets in every variable that can hold one.
var secretEnv = map[string]string{
	"INVENTORY_API_KEYS":            "tok-SECRET-one:admin",
	"INVENTORY_DATABASE_URL":        "postgres://inv:pw-SECRET-two@db.internal:5432/inv?sslmode=require",
	"INVENTORY_REDIS_URL":           "rediss://default:pw-SECRET-three@redis.internal:6380/0",
	"INVENTORY_BENCH_TOKEN":         "SECRET-four",
	"INVENTORY_IMPORT_TOKEN":        "SECRET-six",
	"INVENTORY_REDIS_CLUSTER_ADDRS": "rediss://inv:pw-SECRET-five@node1:6379?addr=node2:6379",
}

// --help of the built binary, with secrets in the environment, shows
// "(set)" in their place and never their values; values that are no
// secret are shown.
func TestHelpNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	env := append(os.Environ(), "INVENTORY_REDIS_PREFIX=shown-prefix")
	for k, v := range secretEnv {
		env = append(env, k+"="+v)
	}
	for _, c := range commands() {
		out := runBinary(t, bin, env, c.name, "--help")
		require.NotContains(t, out, "SECRET", "inventory %s --help", c.name)
		require.NotContains(t, out, "pw-", "inventory %s --help", c.name)
		if c.name == "import" { // a client of the API: its token is its secret
			require.Contains(t, out, "(set)", "inventory %s --help", c.name)
		}
		if c.name != "version" && c.name != "health" && c.name != "import" {
			require.Contains(t, out, "(set)", "inventory %s --help", c.name)
			require.Contains(t, out, "from the environment: shown-prefix", "inventory %s --help", c.name)
		}
	}
	// A Redis URL without user or password is no secret, nor a list of
	// nodes.
	out := runBinary(t, bin, append(os.Environ(), "INVENTORY_REDIS_URL=redis://cache.internal:6379/2",
		"INVENTORY_REDIS_CLUSTER_ADDRS=node1:6379,node2:6379"), "persist", "--help")
	require.Contains(t, out, "from the environment: redis://cache.internal:6379/2")
	require.Contains(t, out, "from the environment: node1:6379,node2:6379")
	// Nor does a variable that does not parse echo a secret.
	out = runBinary(t, bin, append(env, "INVENTORY_PARTITIONS=many"), "serve")
	require.Contains(t, out, `INVENTORY_PARTITIONS="many"`)
	require.NotContains(t, out, "SECRET")
}

func TestHealthLocalAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0.0.0.0:9090": "127.0.0.1:9090", ":9090": "127.0.0.1:9090", "[::]:9090": "127.0.0.1:9090",
		"10.0.0.5:9090": "10.0.0.5:9090", "admin.local:1": "admin.local:1",
	} {
		require.Equal(t, want, localAddr(in), in)
	}
}

func TestSecretURLs(t *testing.T) {
	t.Parallel()
	for v, secret := range map[string]bool{
		"redis://127.0.0.1:6379/0": false, "rediss://redis:6380/0?ca_file=/ca.pem": false, "embedded": false,
		"node1:6379,node2:6379": false, "redis://:pw@redis:6379/0": true, "redis://user@redis:6379/0": true,
		"rediss://u:p@n1:6379?addr=n2:6379": true, "redis://%zz@x": true, "u:p@host:6379": true,
	} {
		require.Equal(t, secret, hasUserinfo(v), v)
	}
}
