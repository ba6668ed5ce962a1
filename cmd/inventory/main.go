// Command inventory runs the inventory engine: the HTTP API, the persister,
// the reconciler, the rebuilder and the reservation sweeper, together
// (`inventory serve`) or one role per process.
//
// Configuration comes from the environment (docs/design.md §15) with flags over it;
// `inventory <command> --help` lists both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/shelfline/inventory/internal/admin"
)

// version, when set at build time with -ldflags "-X main.version=…",
// overrides the module version the build recorded (a container built
// without its .git directory knows no better).
var version = ""

// build returns the running binary's version as `inventory version` and
// inventory_build_info report it: the main module's version from
// runtime/debug.ReadBuildInfo (vX.Y.Z for `go install …@vX.Y.Z`; a
// pseudo-version or "(devel)" with the VCS revision when built in a
// checkout).
func build() admin.Build {
	b := admin.ReadBuild()
	if version != "" {
		b.Version = version
	}
	return b
}

func buildVersion() string { return build().String() }

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr *os.File) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP API with the persister, reconciler, rebuilder and sweeper (each can be switched off)", runServe},
		{"persist", "run only the persister: drain the partitions' event streams into the PostgreSQL ledger", runPersist},
		{"webhooks", "run only the webhook delivery workers: signed deliveries of the events to subscribed endpoints", runWebhooks},
		{"relay", "copy every event to a Kafka topic (--kafka-brokers, --kafka-topic), keyed <store>/<sku>, at least once", runRelay},
		{"groups", "list the consumer groups of the event streams; `groups forget NAME` removes a relay or webhooks group no longer read", runGroups},
		{"reconcile", "compare Redis with the ledger once (--mode check|repair) and print the report", runReconcile},
		{"migrate", "apply pending PostgreSQL schema migrations", runMigrate},
		{"seed", "load the demo furniture chain (--demo) through the engine", runSeed},
		{"import", "import a CSV file of stock lines (store, sku, on_hand or delta, reason, state) through the bulk routes, resumable", runImport},
		{"bench", "run a load scenario (flash-sale, mixed, bulk) against the engine, the server and the baselines", runBench},
		{"health", "ask a running process's /readyz (or --url) and exit 0 when it answers 2xx: a probe for images without a shell", runHealth},
		{"version", "print the version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "inventory: a Redis-first inventory engine with a PostgreSQL ledger.\n\nusage: inventory <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n`inventory <command> --help` documents each flag and its environment variable.\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr *os.File) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		case errors.Is(err, errDrift):
			fmt.Fprintf(stderr, "inventory %s: %v\n", c.name, err)
			return 3
		}
		fmt.Fprintf(stderr, "inventory %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "inventory: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func runVersion(_ context.Context, args []string, stdout, stderr *os.File) error {
	fs := newFlagSet("version", "Print the version: the module version the build recorded (vX.Y.Z for a binary made by\n"+
		"`go install …@vX.Y.Z`; a pseudo-version or (devel) with the VCS revision when built in a checkout)\n"+
		"and the Go version.", stderr, os.Getenv)
	if err := parse(fs, args); err != nil {
		return err
	}
	b := build()
	fmt.Fprintf(stdout, "inventory %s %s\n", b.String(), b.GoVersion)
	return nil
}
