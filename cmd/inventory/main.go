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
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			return "dev-" + rev + dirty
		}
	}
	return "dev"
}

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr *os.File) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP API with the persister, reconciler, rebuilder and sweeper (each can be switched off)", runServe},
		{"persist", "run only the persister: drain the partitions' event streams into the PostgreSQL ledger", runPersist},
		{"reconcile", "compare Redis with the ledger once (--mode check|repair) and print the report", runReconcile},
		{"migrate", "apply pending PostgreSQL schema migrations", runMigrate},
		{"seed", "load the demo furniture chain (--demo) through the engine", runSeed},
		{"bench", "run a load scenario (flash-sale, mixed, bulk) against the engine, the server and the baselines", runBench},
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

// errUsage marks a flag error already reported by the flag package.
var errUsage = errors.New("usage")

func parse(fs *flag.FlagSet, args []string) error {
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
	return nil
}

func runVersion(_ context.Context, args []string, stdout, stderr *os.File) error {
	fs := newFlagSet("version", "Print the version.", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "inventory", buildVersion())
	return nil
}
