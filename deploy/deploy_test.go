package deploy

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.yaml.in/yaml/v3"

	"github.com/shelfline/inventory/internal/testsupport"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsupport.RemoveBinary()
	os.Exit(code)
}

// binaryFacts is what the built inventory says of itself: its commands,
// each command's flags and every variable they take.
type binaryFacts struct {
	path     string
	commands map[string]map[string]bool // command → its flags
	vars     map[string]bool
}

var (
	commandRE = regexp.MustCompile(`(?m)^  ([a-z]+) {2,}\S`)
	flagRE    = regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`)
	varRE     = regexp.MustCompile(`\[(INVENTORY_[A-Z0-9_]+)`)
	namedRE   = regexp.MustCompile(`INVENTORY_[A-Z0-9_]*[A-Z0-9]`)
)

// inspect runs the built binary's usage and every command's --help.
func inspect(t *testing.T) *binaryFacts {
	t.Helper()
	b := &binaryFacts{path: testsupport.BuildBinary(t), commands: map[string]map[string]bool{}, vars: map[string]bool{}}
	usage, _ := exec.Command(b.path).CombinedOutput() // exits 2
	_, cmds, ok := strings.Cut(string(usage), "\ncommands:\n")
	require.True(t, ok, "usage lists the commands: %s", usage)
	for _, m := range commandRE.FindAllStringSubmatch(cmds, -1) {
		help, err := exec.Command(b.path, m[1], "--help").CombinedOutput()
		require.NoError(t, err, "inventory %s --help: %s", m[1], help)
		flags := map[string]bool{}
		for _, f := range flagRE.FindAllStringSubmatch(string(help), -1) {
			flags[f[1]] = true
		}
		for _, v := range varRE.FindAllStringSubmatch(string(help), -1) {
			b.vars[v[1]] = true
		}
		b.commands[m[1]] = flags
	}
	for _, c := range []string{"serve", "persist", "health"} {
		require.Contains(t, b.commands, c)
	}
	require.True(t, b.vars["INVENTORY_ADMIN_ADDR"])
	return b
}

// process is an inventory process a deploy file runs: its arguments (the
// command first) and its environment, as far as the file tells.
type process struct {
	where string // file and object, for messages
	args  []string
	env   map[string]string
}

// probe is an HTTP GET a deploy file makes of a process.
type probe struct {
	where string
	proc  *process
	port  string // a number
	path  string
}

// checker gathers what the deploy files name and checks it against the
// binary.
type checker struct {
	t      *testing.T
	bin    *binaryFacts
	procs  []*process
	probes []probe
}

// run records a process and checks its command, flags and variables.
func (c *checker) run(p *process) {
	c.t.Helper()
	require.NotEmpty(c.t, p.args, "%s: no command", p.where)
	flags, ok := c.bin.commands[p.args[0]]
	require.True(c.t, ok, "%s: inventory has no command %q", p.where, p.args[0])
	for _, a := range p.args[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		require.True(c.t, flags[name], "%s: inventory %s has no flag --%s", p.where, p.args[0], name)
	}
	c.vars(p.where, p.env)
	c.procs = append(c.procs, p)
}

// vars checks that every INVENTORY_* name among keys is a variable of the
// binary.
func (c *checker) vars(where string, env map[string]string) {
	c.t.Helper()
	for k := range env {
		if strings.HasPrefix(k, "INVENTORY_") {
			require.True(c.t, c.bin.vars[k], "%s: inventory has no variable %s", where, k)
		}
	}
}

// text checks every INVENTORY_* name a file's text holds, comments
// included.
func (c *checker) text(file string, b []byte) {
	c.t.Helper()
	for _, v := range namedRE.FindAllString(string(b), -1) {
		require.True(c.t, c.bin.vars[v], "%s names %s, which inventory does not take", file, v)
	}
}

// healthCommand turns `inventory health --url URL` run in p's container
// into a probe of p.
func (c *checker) healthCommand(where string, p *process, args []string) {
	c.t.Helper()
	h := &process{where: where, args: args, env: p.env}
	c.run(h)
	require.Equal(c.t, "health", args[0], "%s: a health check runs inventory health", where)
	target := ""
	for i, a := range args {
		if a == "--url" && i+1 < len(args) {
			target = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--url="); ok {
			target = v
		}
	}
	if target == "" {
		target = "http://" + p.addr("INVENTORY_ADMIN_ADDR", "127.0.0.1:9090") + "/readyz"
	}
	u, err := url.Parse(target)
	require.NoError(c.t, err, where)
	c.probes = append(c.probes, probe{where: where, proc: p, port: u.Port(), path: u.Path})
}

// addr returns the listen address variable env of p, else def.
func (p *process) addr(env, def string) string {
	if v := p.env[env]; v != "" {
		return v
	}
	return def
}

// role tells what p serves on port: "api" (INVENTORY_ADDR) or "admin"
// (INVENTORY_ADMIN_ADDR); "" for neither.
func (p *process) role(port string) string {
	_, api, _ := net.SplitHostPort(p.addr("INVENTORY_ADDR", "127.0.0.1:8080"))
	_, admin, _ := net.SplitHostPort(p.addr("INVENTORY_ADMIN_ADDR", "127.0.0.1:9090"))
	apiOn := p.args[0] == "serve" && !slicesContains(p.args, "--api=false")
	switch {
	case port == admin && !strings.EqualFold(p.env["INVENTORY_ADMIN_ADDR"], "off"):
		return "admin"
	case port == api && apiOn:
		return "api"
	}
	return ""
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// live is the built binary running on real Redis and PostgreSQL: serve
// (API and admin address), and persist, webhooks and relay (admin address;
// the relay's Kafka is franz-go's in-process kfake), each on free ports, for
// the probes to ask.
type live struct {
	base map[string]string // "serve api", "serve admin", "persist admin" → base URL
}

func startLive(t *testing.T, bin string) *live {
	t.Helper()
	rdb := testsupport.RedisClient(t, 0)
	env := []string{
		"INVENTORY_REDIS_URL=" + testsupport.RedisURL(),
		"INVENTORY_REDIS_PREFIX=" + testsupport.IsolatedPrefix(t, rdb),
		"INVENTORY_PARTITIONS=4",
		"INVENTORY_DATABASE_URL=" + testsupport.SchemaURL(t, testsupport.Schema(t), ""),
		"INVENTORY_API_KEYS=deploy-test:admin",
		"INVENTORY_LOG_LEVEL=warn",
	}
	l := &live{base: map[string]string{}}
	start := func(command string, extra []string, roles ...string) {
		e := append(append([]string{}, env...), extra...)
		for _, r := range roles {
			addr := testsupport.FreeAddr(t)
			l.base[command+" "+r] = "http://" + addr
			if r == "api" {
				e = append(e, "INVENTORY_ADDR="+addr)
			} else {
				e = append(e, "INVENTORY_ADMIN_ADDR="+addr)
			}
		}
		cmd := exec.Command(bin, command)
		cmd.Env = append(os.Environ(), e...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		require.NoError(t, cmd.Start())
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		ready := l.base[command+" admin"] + "/readyz"
		testsupport.WaitFor(t, 30*time.Second, "inventory "+command+" ready", func() bool {
			select {
			case <-done:
				t.Fatalf("inventory %s exited: %s", command, out.String())
			default:
			}
			code, _ := get(ready)
			return code == 200
		})
	}
	start("serve", nil, "api", "admin")
	start("persist", nil, "admin")
	start("webhooks", nil, "admin")
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "inventory.events"))
	require.NoError(t, err)
	t.Cleanup(kafka.Close)
	start("relay", []string{"INVENTORY_KAFKA_BROKERS=" + strings.Join(kafka.ListenAddrs(), ",")}, "admin")
	return l
}

func get(u string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// askProbes asks every probe of the live processes: the route must exist
// on the port the file names, for the command the file runs there.
func (c *checker) askProbes(l *live) {
	c.t.Helper()
	require.NotEmpty(c.t, c.probes)
	for _, p := range c.probes {
		role := p.proc.role(p.port)
		require.NotEmpty(c.t, role, "%s: port %s is neither the API's (INVENTORY_ADDR=%s) nor the admin address (INVENTORY_ADMIN_ADDR=%s) of inventory %s",
			p.where, p.port, p.proc.env["INVENTORY_ADDR"], p.proc.env["INVENTORY_ADMIN_ADDR"], p.proc.args[0])
		cmd := p.proc.args[0]
		if _, ok := l.base[cmd+" admin"]; !ok {
			cmd = "serve"
		}
		base, ok := l.base[cmd+" "+role]
		require.True(c.t, ok, "%s: inventory %s has no %s port", p.where, cmd, role)
		code, err := get(base + p.path)
		require.NoError(c.t, err, p.where)
		require.NotContains(c.t, []int{404, 405}, code, "%s: GET %s on the %s port of inventory %s answers %d", p.where, p.path, role, cmd, code)
		c.t.Logf("%s: GET %s on the %s port of inventory %s: %d", p.where, p.path, role, cmd, code)
	}
}

// TestDeployFiles parses every file of deploy/ and checks that every
// command, flag, variable and route it names exists in the binary, and
// what each kind of file must do.
func TestDeployFiles(t *testing.T) {
	c := &checker{t: t, bin: inspect(t)}
	image := c.dockerfile("Dockerfile")
	c.compose("compose.yaml", image)
	c.kubernetes("kubernetes", image)
	c.systemd("systemd")
	c.askProbes(startLive(t, c.bin.path))
}

// image is what the Dockerfile's final stage gives every container: the
// entrypoint, the default command and environment.
type image struct {
	entrypoint string
	cmd        []string
	env        map[string]string
	health     []string
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	op, args string
}

func readDockerfile(t *testing.T, file string) []instruction {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{op: strings.ToUpper(op), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	require.Empty(t, cur.String(), "%s ends in a continuation", file)
	return out
}

// execForm parses a JSON exec form (["a", "b"]).
func execForm(t *testing.T, where, s string) []string {
	t.Helper()
	var v []string
	require.NoError(t, yaml.Unmarshal([]byte(s), &v), "%s: %s is not an exec form", where, s)
	return v
}

func (c *checker) dockerfile(file string) *image {
	t := c.t
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	c.text(file, b)
	ins := readDockerfile(t, file)
	var stages [][]instruction
	for _, in := range ins {
		if in.op == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	require.GreaterOrEqual(t, len(stages), 2, "%s: multi-stage", file)
	built := false
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			if in.op == "RUN" && strings.Contains(in.args, "go build") {
				require.Contains(t, in.args, "CGO_ENABLED=0", "%s: a static binary", file)
				require.Contains(t, in.args, "./cmd/inventory", file)
				c.buildLikeDockerfile(file, in.args)
				built = true
			}
		}
	}
	require.True(t, built, "%s: a stage builds the binary", file)

	final := stages[len(stages)-1]
	base := strings.Fields(final[0].args)[0]
	require.True(t, strings.HasPrefix(base, "gcr.io/distroless/static") || base == "scratch",
		"%s: the final stage is distroless/static or scratch, not %s", file, base)
	img := &image{env: map[string]string{}}
	user := ""
	for _, in := range final {
		switch in.op {
		case "RUN":
			t.Fatalf("%s: the final stage runs %q: it has no shell", file, in.args)
		case "USER":
			user = in.args
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, ok := strings.Cut(kv, "=")
				require.True(t, ok, "%s: ENV %s", file, kv)
				img.env[k] = v
			}
		case "ENTRYPOINT":
			ep := execForm(t, file, in.args)
			require.Len(t, ep, 1, "%s: ENTRYPOINT is the binary", file)
			img.entrypoint = ep[0]
		case "CMD":
			img.cmd = execForm(t, file, in.args)
		case "HEALTHCHECK":
			_, form, ok := strings.Cut(in.args, "CMD ")
			require.True(t, ok, "%s: HEALTHCHECK CMD", file)
			img.health = execForm(t, file, form)
		case "COPY":
			require.Contains(t, in.args, "--from=", "%s: the final stage copies only what a stage built", file)
		}
	}
	require.NotEmpty(t, user, "%s: the final stage names its user", file)
	uid, _, _ := strings.Cut(user, ":")
	require.NotContains(t, []string{"root", "0"}, uid, "%s: a non-root user", file)
	require.Equal(t, "/usr/local/bin/inventory", img.entrypoint, file)
	c.vars(file, img.env)
	p := &process{where: file + " CMD", args: img.cmd, env: img.env}
	c.run(p)
	require.NotEmpty(t, img.health, "%s: HEALTHCHECK", file)
	require.Equal(t, img.entrypoint, img.health[0], "%s: the health check runs the binary", file)
	c.healthCommand(file+" HEALTHCHECK", p, img.health[1:])
	return img
}

// buildLikeDockerfile runs the Dockerfile's build command in the checkout
// (its output path and VERSION replaced) and checks that the binary is
// static and reports the version given.
func (c *checker) buildLikeDockerfile(file, run string) {
	t := c.t
	t.Helper()
	const version = "v0.0.0-deploy-test"
	out := filepath.Join(t.TempDir(), "inventory")
	script := strings.ReplaceAll(strings.ReplaceAll(run, "${VERSION}", version), "/out/inventory", out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Dir = ".."
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s: %s\n%s", file, script, b)
	f, err := elf.Open(out)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "%s: the binary is static (no dynamic loader)", file)
	}
	b, err = exec.Command(out, "version").CombinedOutput()
	require.NoError(t, err, "%s", b)
	require.True(t, strings.HasPrefix(string(b), "inventory "+version+" "), "%s: VERSION is the version: %q", file, b)
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if err != nil {
			require.ErrorContains(t, err, "EOF", "%s parses", file)
			break
		}
		if doc != nil {
			out = append(out, doc)
		}
	}
	require.NotEmpty(t, out, file)
	return out
}

func m(v any) map[string]any {
	out, _ := v.(map[string]any)
	return out
}

func list(v any) []any {
	out, _ := v.([]any)
	return out
}

func strs(t *testing.T, where string, v any) []string {
	t.Helper()
	var out []string
	for _, x := range list(v) {
		s, ok := x.(string)
		require.True(t, ok, "%s: %v is not a string", where, x)
		out = append(out, s)
	}
	return out
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func (c *checker) compose(file string, img *image) {
	t := c.t
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	c.text(file, b)
	doc := yamlDocs(t, file)[0]
	services := m(doc["services"])
	require.NotEmpty(t, services, file)

	redis := strings.Join(strs(t, file, m(services["redis"])["command"]), " ")
	for _, want := range []string{"--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"} {
		require.Contains(t, redis, want, "%s: Redis runs with %s", file, want)
	}
	require.Contains(t, str(m(services["postgres"])["image"]), "postgres", file)

	apis, persisters := 0, 0
	r := roles{}
	for name, sv := range services {
		s := m(sv)
		if build := m(s["build"]); build == nil || !strings.HasSuffix(str(build["dockerfile"]), "Dockerfile") {
			continue // not the inventory image
		}
		where := file + " service " + name
		env := map[string]string{}
		for k, v := range img.env {
			env[k] = v
		}
		for k, v := range m(s["environment"]) {
			env[k] = str(v)
		}
		args := img.cmd
		if s["command"] != nil {
			args = strs(t, where, s["command"])
		}
		p := &process{where: where, args: args, env: env}
		c.run(p)
		hc := strs(t, where, m(s["healthcheck"])["test"])
		require.GreaterOrEqual(t, len(hc), 3, "%s: a health check", where)
		require.Equal(t, []string{"CMD", img.entrypoint}, hc[:2], "%s: the health check runs the binary", where)
		c.healthCommand(where+" healthcheck", p, hc[2:])
		deps := m(s["depends_on"])
		for _, d := range []string{"redis", "postgres"} {
			require.Equal(t, "service_healthy", m(deps[d])["condition"], "%s waits for %s", where, d)
		}
		replicas := 1
		if r, ok := m(s["deploy"])["replicas"].(int); ok {
			replicas = r
		}
		switch args[0] {
		case "serve":
			if !slicesContains(args, "--api=false") {
				require.Contains(t, args, "--persister=false", "%s: the API with the persister off", where)
				require.NotEmpty(t, s["ports"], "%s publishes its port", where)
				apis += replicas
			}
		case "persist":
			persisters += replicas
		}
		r.add(p, replicas)
	}
	require.Positive(t, apis, "%s: an API", file)
	require.GreaterOrEqual(t, persisters, 2, "%s: two persister workers", file)
	r.check(t, file)
}

// roles checks, per deploy method, the processes besides the API and the
// persister: the webhook workers run apart (and then no serve runs them
// too), and exactly one Kafka relay, which names its brokers.
type roles struct {
	webhooks, relays int
	serves, relay    []*process
}

func (r *roles) add(p *process, replicas int) {
	switch p.args[0] {
	case "serve":
		r.serves = append(r.serves, p)
	case "webhooks":
		r.webhooks += replicas
	case "relay":
		r.relays += replicas
		r.relay = append(r.relay, p)
	}
}

func (r *roles) check(t *testing.T, what string) {
	t.Helper()
	require.Positive(t, r.webhooks, "%s: webhook workers (inventory webhooks)", what)
	require.Equal(t, 1, r.relays, "%s: one Kafka relay (inventory relay)", what)
	for _, p := range r.serves {
		require.Contains(t, p.args, "--webhooks=false", "%s: webhook workers run apart, so serve runs none", p.where)
	}
	for _, p := range r.relay {
		require.NotEmpty(t, p.env["INVENTORY_KAFKA_BROKERS"], "%s: the relay names its brokers", p.where)
	}
}

// podSpec is a Kubernetes pod template: its labels, its containers'
// processes and their named ports.
type podSpec struct {
	where  string
	labels map[string]any
	spec   map[string]any
	procs  map[string]*process // by container name
	ports  map[string]string   // port name → number
}

func (c *checker) kubernetes(dir string, img *image) {
	t := c.t
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var docs []map[string]any
	whereOf := map[int]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		c.text(f, b)
		for _, d := range yamlDocs(t, f) {
			whereOf[len(docs)] = fmt.Sprintf("%s %s/%s", f, d["kind"], str(m(d["metadata"])["name"]))
			docs = append(docs, d)
		}
	}
	configs := map[string]map[string]string{} // ConfigMap and Secret data by kind/name
	for i, d := range docs {
		switch d["kind"] {
		case "Kustomization":
			for _, r := range strs(t, whereOf[i], d["resources"]) {
				_, err := os.Stat(filepath.Join(dir, r))
				require.NoError(t, err, "%s lists %s", whereOf[i], r)
			}
		case "ConfigMap", "Secret":
			data := map[string]string{}
			for _, key := range []string{"data", "stringData"} {
				for k, v := range m(d[key]) {
					data[k] = str(v)
				}
			}
			c.vars(whereOf[i], data)
			configs[str(d["kind"])+"/"+str(m(d["metadata"])["name"])] = data
		}
	}
	var pods []*podSpec
	for i, d := range docs {
		var tmpl map[string]any
		switch d["kind"] {
		case "Deployment", "StatefulSet", "DaemonSet":
			tmpl = m(m(d["spec"])["template"])
		case "CronJob":
			tmpl = m(m(m(m(d["spec"])["jobTemplate"])["spec"])["template"])
		default:
			continue
		}
		pod := &podSpec{where: whereOf[i], labels: m(m(tmpl["metadata"])["labels"]), spec: m(tmpl["spec"]),
			procs: map[string]*process{}, ports: map[string]string{}}
		if d["kind"] == "Deployment" {
			sel := m(m(d["spec"])["selector"])["matchLabels"]
			require.True(t, matches(m(sel), pod.labels), "%s: the selector matches the pod", pod.where)
		}
		psc := m(pod.spec["securityContext"])
		for _, cv := range list(pod.spec["containers"]) {
			ct := m(cv)
			where := pod.where + " container " + str(ct["name"])
			csc := m(ct["securityContext"])
			require.True(t, psc["runAsNonRoot"] == true || csc["runAsNonRoot"] == true, "%s: runAsNonRoot", where)
			env := map[string]string{}
			for k, v := range img.env {
				env[k] = v
			}
			for _, ef := range list(ct["envFrom"]) {
				for kind, key := range map[string]string{"ConfigMap": "configMapRef", "Secret": "secretRef"} {
					if ref := m(m(ef)[key]); ref != nil {
						data, ok := configs[kind+"/"+str(ref["name"])]
						require.True(t, ok, "%s: %s %s is in the manifests", where, kind, ref["name"])
						for k, v := range data {
							env[k] = v
						}
					}
				}
			}
			for _, ev := range list(ct["env"]) {
				env[str(m(ev)["name"])] = str(m(ev)["value"])
			}
			args := img.cmd
			if ct["args"] != nil {
				args = strs(t, where, ct["args"])
			}
			require.Nil(t, ct["command"], "%s: the image's entrypoint runs", where)
			p := &process{where: where, args: args, env: env}
			c.run(p)
			pod.procs[str(ct["name"])] = p
			for _, pv := range list(ct["ports"]) {
				if name := str(m(pv)["name"]); name != "" {
					pod.ports[name] = str(m(pv)["containerPort"])
				}
			}
			for _, kind := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
				if pr := m(ct[kind]); pr != nil {
					c.httpGet(where+" "+kind, p, pod, m(pr["httpGet"]))
				}
			}
		}
		if ann := m(m(tmpl["metadata"])["annotations"]); ann["prometheus.io/scrape"] == "true" {
			for _, p := range pod.procs {
				c.probes = append(c.probes, probe{where: pod.where + " prometheus.io annotations", proc: p,
					port: str(ann["prometheus.io/port"]), path: str(ann["prometheus.io/path"])})
			}
		}
		pods = append(pods, pod)
	}

	// The roles: an API Deployment with probes, a preStop pause, a
	// PodDisruptionBudget and a Service; a persister; a reconciler.
	var api, persister, reconciler *podSpec
	r := roles{}
	for i, d := range docs {
		if d["kind"] != "Deployment" {
			continue
		}
		spec := m(d["spec"])
		replicas := 1
		if n, ok := spec["replicas"].(int); ok {
			replicas = n
		}
		for _, cv := range list(m(m(spec["template"])["spec"])["containers"]) {
			for _, pod := range pods {
				if p := pod.procs[str(m(cv)["name"])]; p != nil && pod.where == whereOf[i] {
					r.add(p, replicas)
					if p.args[0] == "relay" {
						require.Equal(t, "Recreate", m(spec["strategy"])["type"],
							"%s: the relay is replaced, never rolled (two at once could interleave an item's events)", whereOf[i])
					}
				}
			}
		}
	}
	r.check(t, dir)
	for _, pod := range pods {
		for _, p := range pod.procs {
			switch {
			case p.args[0] == "serve" && p.role(pod.ports["http"]) == "api":
				api = pod
			case p.args[0] == "persist":
				persister = pod
			case p.args[0] == "reconcile",
				p.args[0] == "serve" && !slicesContains(p.args, "--reconciler=false"):
				reconciler = pod
			}
		}
	}
	require.NotNil(t, api, "an API Deployment")
	require.NotNil(t, persister, "a persister Deployment")
	require.NotNil(t, reconciler, "a reconciler")
	for _, cv := range list(api.spec["containers"]) {
		ct := m(cv)
		for _, kind := range []string{"readinessProbe", "livenessProbe"} {
			require.NotNil(t, m(m(ct[kind])["httpGet"]), "%s: %s on a route", api.where, kind)
		}
		require.NotNil(t, m(m(ct["lifecycle"])["preStop"]), "%s: preStop", api.where)
	}
	pdb, svc := false, false
	for i, d := range docs {
		spec := m(d["spec"])
		switch d["kind"] {
		case "PodDisruptionBudget":
			if matches(m(m(spec["selector"])["matchLabels"]), api.labels) {
				pdb = true
			}
		case "Service":
			sel := m(spec["selector"])
			require.NotEmpty(t, sel, whereOf[i])
			var target *podSpec
			for _, pod := range pods {
				if matches(sel, pod.labels) {
					target = pod
				}
			}
			require.NotNil(t, target, "%s selects a pod", whereOf[i])
			for _, pv := range list(spec["ports"]) {
				tp := str(m(pv)["targetPort"])
				if n, ok := target.ports[tp]; ok {
					tp = n
				}
				for _, p := range target.procs {
					require.NotEmpty(t, p.role(tp), "%s: targetPort %s is served by %s", whereOf[i], tp, target.where)
				}
			}
			if target == api {
				svc = true
			}
		}
	}
	require.True(t, pdb, "a PodDisruptionBudget of the API")
	require.True(t, svc, "a Service of the API")
}

func matches(sel, labels map[string]any) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// httpGet records a probe of a Kubernetes httpGet.
func (c *checker) httpGet(where string, p *process, pod *podSpec, hg map[string]any) {
	c.t.Helper()
	require.NotNil(c.t, hg, "%s: an httpGet", where)
	port := str(hg["port"])
	if n, ok := pod.ports[port]; ok {
		port = n
	}
	_, err := strconv.Atoi(port)
	require.NoError(c.t, err, "%s: port %s is a container's port", where, hg["port"])
	c.probes = append(c.probes, probe{where: where, proc: p, port: port, path: str(hg["path"])})
}

// unit is a systemd unit file: section → key → values.
type unit map[string]map[string][]string

func readUnit(t *testing.T, file string) unit {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s:%d: key=value", file, n)
			require.NotEmpty(t, section, "%s:%d: outside a section", file, n)
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// envFile reads KEY=VALUE lines.
func envFile(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	env := map[string]string{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s:%d: KEY=VALUE", file, n+1)
		env[k] = v
	}
	return env
}

func (c *checker) systemd(dir string) {
	t := c.t
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	envFiles := map[string]map[string]string{} // installed path → its settings
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		c.text(f, b)
		if strings.HasSuffix(f, ".env") {
			env := envFile(t, f)
			c.vars(f, env)
			envFiles["/etc/inventory/"+filepath.Base(f)] = env
		}
	}
	commands := map[string]bool{}
	r := roles{}
	for _, f := range files {
		if !strings.HasSuffix(f, ".service") {
			continue
		}
		u := readUnit(t, f)
		svc := u["Service"]
		require.NotNil(t, svc, "%s: [Service]", f)
		require.NotNil(t, u["Install"], "%s: [Install]", f)
		require.True(t, len(svc["User"]) > 0 && svc["User"][0] != "root" || len(svc["DynamicUser"]) > 0 && svc["DynamicUser"][0] == "yes",
			"%s: not root", f)
		env := map[string]string{}
		for _, ef := range svc["EnvironmentFile"] {
			path := strings.TrimPrefix(ef, "-")
			e, ok := envFiles[path]
			require.True(t, ok, "%s: %s is in deploy/systemd", f, path)
			for k, v := range e {
				env[k] = v
			}
		}
		for _, line := range svc["Environment"] {
			for _, kv := range strings.Fields(line) {
				k, v, ok := strings.Cut(strings.Trim(kv, `"`), "=")
				require.True(t, ok, "%s: Environment=%s", f, kv)
				env[k] = v
			}
		}
		require.Len(t, svc["ExecStart"], 1, "%s: ExecStart", f)
		exe := strings.Fields(svc["ExecStart"][0])
		require.Equal(t, "/usr/local/bin/inventory", exe[0], "%s: runs the binary", f)
		p := &process{where: f, args: exe[1:], env: env}
		c.run(p)
		commands[exe[1]] = true
		r.add(p, 1)
	}
	require.True(t, commands["serve"], "a unit of the API")
	require.True(t, commands["persist"], "a unit of the persister")
	r.check(t, dir)
}

// The files' list is what README's deploy section describes.
func TestReadmeDescribesEveryFile(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	readme := string(b)
	var files []string
	require.NoError(t, filepath.Walk(".", func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.HasSuffix(path, ".go") {
			return err
		}
		files = append(files, path)
		return nil
	}))
	sort.Strings(files)
	for _, f := range files {
		require.Contains(t, readme, "deploy/"+f, "README says how to use deploy/%s", f)
	}
}
