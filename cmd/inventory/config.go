package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// config is the configuration every subcommand shares (docs/design.md §15):
// environment variables, with flags over them.
type config struct {
	Addr              string
	RedisURL          string
	RedisClusterAddrs string
	RedisPrefix       string
	Partitions        int
	DatabaseURL       string
	APIKeys           string
	LogLevel          string
}

// setting is one documented configuration entry.
type setting struct {
	env, flag, def, help string
}

var settings = []setting{
	{"INVENTORY_ADDR", "addr", "127.0.0.1:8080", "HTTP listen address"},
	{"INVENTORY_REDIS_URL", "redis-url", "redis://127.0.0.1:6379/0", "Redis URL; 'embedded' runs an in-process miniredis (data lost on exit)"},
	{"INVENTORY_REDIS_CLUSTER_ADDRS", "redis-cluster-addrs", "", "host:port,… of a Redis Cluster, used instead of the URL"},
	{"INVENTORY_REDIS_PREFIX", "redis-prefix", "inv", "prefix of every Redis key"},
	{"INVENTORY_PARTITIONS", "partitions", "16", "number of partitions (fixed for a deployment's life)"},
	{"INVENTORY_DATABASE_URL", "database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL URL; 'off' runs without the ledger"},
	{"INVENTORY_API_KEYS", "api-keys", "", "token:role[:store][:rate=R[:burst=B]],… (role admin, reader or store:<id>; rate=R limits the key\n" +
		"to R requests/s, burst=B its bucket (default 2R), rate=off exempts it from --rate-limit); empty: serve makes an admin token"},
	{"INVENTORY_LOG_LEVEL", "log-level", "info", "log level: debug, info, warn, error"},
}

// register adds the shared flags to fs, with defaults from the environment.
func (c *config) register(fs *flag.FlagSet, getenv func(string) string) {
	dst := map[string]*string{
		"addr": &c.Addr, "redis-url": &c.RedisURL, "redis-cluster-addrs": &c.RedisClusterAddrs,
		"redis-prefix": &c.RedisPrefix, "database-url": &c.DatabaseURL, "api-keys": &c.APIKeys, "log-level": &c.LogLevel,
	}
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		help := s.help + " (env " + s.env + ")"
		if s.flag == "partitions" {
			n, err := strconv.Atoi(def)
			if err != nil {
				n = -1 // reported by validate
			}
			fs.IntVar(&c.Partitions, s.flag, n, help)
			continue
		}
		fs.StringVar(dst[s.flag], s.flag, def, help)
	}
}

func (c *config) validate() error {
	if c.Partitions < 1 || c.Partitions > 16384 {
		return fmt.Errorf("INVENTORY_PARTITIONS / --partitions must be 1..16384")
	}
	if strings.TrimSpace(c.RedisURL) == "" && c.RedisClusterAddrs == "" {
		return fmt.Errorf("INVENTORY_REDIS_URL / --redis-url is empty")
	}
	return nil
}

func (c *config) ledgerOff() bool { return strings.EqualFold(strings.TrimSpace(c.DatabaseURL), "off") }

func (c *config) embedded() bool {
	return c.RedisClusterAddrs == "" && strings.EqualFold(strings.TrimSpace(c.RedisURL), "embedded")
}

// newFlagSet returns a subcommand's flag set whose usage lists the
// environment variables too.
func newFlagSet(name, summary string, out *os.File) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: inventory %s [flags]\n\n%s\n\nFlags (each defaults to its environment variable, else the value shown):\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}
