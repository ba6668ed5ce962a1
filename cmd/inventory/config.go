package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// config is the configuration most subcommands share (docs/design.md §15):
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
	// TransferRetention is serve's --transfer-retention: 0 here is the
	// engine's default (commands without the flag); the flag's 0 is
	// negative here (kept for good).
	TransferRetention time.Duration
}

// Defaults of the shared settings.
const (
	defaultAddr        = "127.0.0.1:8080"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultAdminAddr   = "127.0.0.1:9090"
)

// register adds the flags every command that connects shares: Redis,
// partitions, PostgreSQL, logging.
func (c *config) register(fs *flagSet) {
	fs.SecretVar(&c.RedisURL, "redis-url", "INVENTORY_REDIS_URL", defaultRedisURL,
		"Redis URL; 'embedded' runs an in-process miniredis (data lost on exit)", hasUserinfo)
	fs.SecretVar(&c.RedisClusterAddrs, "redis-cluster-addrs", "INVENTORY_REDIS_CLUSTER_ADDRS", "",
		"a Redis Cluster, used instead of the URL: host:port,… or redis[s]://[user:password@]host:port?addr=host:port&addr=…", hasUserinfo)
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "INVENTORY_REDIS_PREFIX", "inv", "prefix of every Redis key")
	fs.IntVar(&c.Partitions, "partitions", "INVENTORY_PARTITIONS", 16, "number of partitions (fixed for a deployment's life)")
	fs.SecretVar(&c.DatabaseURL, "database-url", "INVENTORY_DATABASE_URL", defaultDatabaseURL,
		"PostgreSQL URL; 'off' runs without the ledger", always)
	fs.StringVar(&c.LogLevel, "log-level", "INVENTORY_LOG_LEVEL", "info", "log level: debug, info, warn, error")
}

// registerAPI adds the API's flags: its address and keys.
func (c *config) registerAPI(fs *flagSet) {
	fs.StringVar(&c.Addr, "addr", "INVENTORY_ADDR", defaultAddr, "HTTP listen address of the API")
	fs.SecretVar(&c.APIKeys, "api-keys", "INVENTORY_API_KEYS", "",
		"token:role[:store][:rate=R[:burst=B]],… (role admin, reader or store:<id>; rate=R limits the key\n"+
			"to R requests/s, burst=B its bucket (default 2R), rate=off exempts it from --rate-limit); empty: serve makes an admin token",
		always)
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

// adminOff reports whether an admin address setting turns the admin server
// off: empty or "off".
func adminOff(addr string) bool {
	a := strings.TrimSpace(addr)
	return a == "" || strings.EqualFold(a, "off")
}

// registerAdmin adds --admin-addr to fs.
func registerAdmin(fs *flagSet) *string {
	return fs.String("admin-addr", "INVENTORY_ADMIN_ADDR", defaultAdminAddr,
		"admin address: /metrics, /healthz and /readyz of this process; empty or 'off' turns it off")
}

// always marks a setting whose every value is a secret.
func always(string) bool { return true }

// hasUserinfo marks a URL that carries a user or a password, or does not
// parse (so it cannot be told); a host:port list, without a scheme, has
// none.
func hasUserinfo(v string) bool {
	if !strings.Contains(v, "://") {
		return strings.Contains(v, "@")
	}
	u, err := url.Parse(v)
	return err != nil || u.User != nil
}

// flagSet is a subcommand's flags, each with the environment variable that
// sets its default: a flag's value is its variable's when that is set (not
// empty), else the documented default; a flag on the command line wins.
// --help shows each flag's variable, its default and the value taken from
// the environment, except a secret's, shown as "(set)".
type flagSet struct {
	*flag.FlagSet
	name, summary string
	lookup        func(string) string
	env           map[string]*envFlag // by flag name
	errs          []error
}

// envFlag is a flag's environment variable and what the environment set.
type envFlag struct {
	env string
	// secret tells whether a value of the variable must not be shown.
	secret func(string) bool
	// fromEnv is the value the variable gave the flag, if it did.
	fromEnv string
	set     bool
	// alias names the flag this one is another spelling of.
	alias string
}

// newFlagSet returns the flags of subcommand name; getenv reads the
// environment (os.Getenv).
func newFlagSet(name, summary string, out io.Writer, getenv func(string) string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), name: name, summary: summary,
		lookup: getenv, env: map[string]*envFlag{}}
	fs.SetOutput(out)
	fs.Usage = fs.usage
	return fs
}

// bind ties the flag just defined to its variable and applies the
// variable's value.
func (fs *flagSet) bind(name, env string, secret func(string) bool) {
	if _, dup := fs.env[name]; dup {
		panic("flag --" + name + " bound twice")
	}
	ef := &envFlag{env: env, secret: secret}
	fs.env[name] = ef
	v := fs.lookup(env)
	if v == "" {
		return
	}
	ef.fromEnv, ef.set = v, true
	if err := fs.Lookup(name).Value.Set(v); err != nil {
		shown := fmt.Sprintf("%q", v)
		if secret != nil && secret(v) {
			shown = "(set)"
		}
		fs.errs = append(fs.errs, fmt.Errorf("%s=%s: %v", env, shown, err))
	}
}

// String defines a string flag with its variable.
func (fs *flagSet) String(name, env, def, help string) *string {
	p := new(string)
	fs.StringVar(p, name, env, def, help)
	return p
}

// StringVar defines a string flag with its variable, stored in p.
func (fs *flagSet) StringVar(p *string, name, env, def, help string) {
	fs.FlagSet.StringVar(p, name, def, help)
	fs.bind(name, env, nil)
}

// SecretVar defines a string flag whose values are secret when secret
// says so: --help shows "(set)" for such a value from the environment.
func (fs *flagSet) SecretVar(p *string, name, env, def, help string, secret func(string) bool) {
	fs.FlagSet.StringVar(p, name, def, help)
	fs.bind(name, env, secret)
}

// Secret is SecretVar with a new variable.
func (fs *flagSet) Secret(name, env, def, help string, secret func(string) bool) *string {
	p := new(string)
	fs.SecretVar(p, name, env, def, help, secret)
	return p
}

// Bool defines a boolean flag with its variable.
func (fs *flagSet) Bool(name, env string, def bool, help string) *bool {
	p := fs.FlagSet.Bool(name, def, help)
	fs.bind(name, env, nil)
	return p
}

// IntVar defines an int flag with its variable, stored in p.
func (fs *flagSet) IntVar(p *int, name, env string, def int, help string) {
	fs.FlagSet.IntVar(p, name, def, help)
	fs.bind(name, env, nil)
}

// Int defines an int flag with its variable.
func (fs *flagSet) Int(name, env string, def int, help string) *int {
	p := new(int)
	fs.IntVar(p, name, env, def, help)
	return p
}

// Int64 defines an int64 flag with its variable.
func (fs *flagSet) Int64(name, env string, def int64, help string) *int64 {
	p := fs.FlagSet.Int64(name, def, help)
	fs.bind(name, env, nil)
	return p
}

// Float64 defines a float64 flag with its variable.
func (fs *flagSet) Float64(name, env string, def float64, help string) *float64 {
	p := fs.FlagSet.Float64(name, def, help)
	fs.bind(name, env, nil)
	return p
}

// Duration defines a duration flag with its variable.
func (fs *flagSet) Duration(name, env string, def time.Duration, help string) *time.Duration {
	p := fs.FlagSet.Duration(name, def, help)
	fs.bind(name, env, nil)
	return p
}

// Alias defines --name as another spelling of the flag of, with of's
// variable.
func (fs *flagSet) Alias(name, of string) {
	target := fs.env[of]
	if target == nil {
		panic("alias of an unknown flag --" + of)
	}
	fs.Var(alias{fs: fs.FlagSet, name: of}, name, "same as --"+of)
	fs.env[name] = &envFlag{env: target.env, secret: target.secret, alias: of}
}

// Env returns the variable of flag name, or "" for none.
func (fs *flagSet) Env(name string) string {
	if ef := fs.env[name]; ef != nil {
		return ef.env
	}
	return ""
}

// usage prints the subcommand's help: every flag with its variable, its
// default and what the environment set (a secret as "(set)").
func (fs *flagSet) usage() {
	out := fs.Output()
	fmt.Fprintf(out, "usage: inventory %s [flags]\n\n%s\n", fs.name, fs.summary)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(out, "\nFlags (each takes its value from the environment variable shown, else its default;\na flag on the command line wins):\n")
	fs.VisitAll(func(f *flag.Flag) {
		typ, help := flag.UnquoteUsage(f)
		if typ != "" {
			typ = " " + typ
		}
		fmt.Fprintf(out, "  --%s%s\n", f.Name, typ)
		fmt.Fprintf(out, "    \t%s\n", strings.ReplaceAll(help, "\n", "\n    \t"))
		ef := fs.env[f.Name]
		if ef == nil {
			return // reported by the test that every flag has a variable
		}
		if ef.alias != "" {
			fmt.Fprintf(out, "    \t[%s]\n", ef.env)
			return
		}
		line := "[" + ef.env
		if f.DefValue != "" {
			line += ", default " + f.DefValue
		}
		if ef.set {
			v := ef.fromEnv
			if ef.secret != nil && ef.secret(v) {
				v = "(set)"
			}
			line += "; from the environment: " + v
		}
		fmt.Fprintf(out, "    \t%s]\n", line)
	})
}

// errUsage marks a flag error already reported by the flag package.
var errUsage = errors.New("usage")

// parse parses args after the environment was applied: an unparsable
// variable is an error naming it (never a secret's value).
func parse(fs *flagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return errors.Join(fs.errs...)
}

// alias is a flag.Value that sets the flag named name, so a second
// spelling (--target, --buyers) works like the first.
type alias struct {
	fs   *flag.FlagSet
	name string
}

func (a alias) String() string {
	if a.fs == nil {
		return ""
	}
	return a.fs.Lookup(a.name).Value.String()
}

func (a alias) Set(v string) error { return a.fs.Set(a.name, v) }
