package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// persisterGroup is the persister's consumer group, which groups forget
// refuses: without it nothing reaches the ledger.
const persisterGroup = "persister"

func runGroups(ctx context.Context, args []string, stdout, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("groups", "List the consumer groups of the partitions' event streams: per group, the partitions it is on,\n"+
		"its entries not acknowledged yet and the age of the oldest. The persister trims no entry the webhooks\n"+
		"and relay groups have not acknowledged, unless the group lags by more than INVENTORY_DOWNSTREAM_MAX_LAG.\n"+
		"`inventory groups forget NAME` removes group NAME from every partition, with its pending entries: for a\n"+
		"relay or webhook deployment that was removed, so its group stops holding the streams at once. A worker\n"+
		"still reading the group makes it again and reads every entry left from the start. The persister's\n"+
		"group cannot be forgotten. Needs Redis only.\n"+
		"usage: inventory groups [forget NAME] [flags]", stderr, os.Getenv)
	cfg.register(fs)
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	pos = append(pos, fs.Args()...)
	if err := errors.Join(fs.errs...); err != nil {
		return err
	}
	var forget string
	switch {
	case len(pos) == 0:
	case len(pos) == 2 && pos[0] == "forget":
		forget = pos[1]
		if forget == persisterGroup {
			return fmt.Errorf("the persister's group %q cannot be forgotten: the ledger would miss every event not persisted yet", forget)
		}
	default:
		fmt.Fprintln(stderr, "usage: inventory groups [forget NAME] [flags]")
		return errUsage
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg.DatabaseURL = "off" // the groups live in Redis alone
	d, stop, err := start(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stop()
	if forget != "" {
		return forgetGroup(ctx, d.e, forget, stdout)
	}
	return listGroups(ctx, d.e, stdout)
}

var errStopScan = errors.New("stop")

// groupSummary is one group across the partitions.
type groupSummary struct {
	partitions int
	unacked    int64
	oldest     engine.StreamID // lowest floor among partitions with unacknowledged entries
}

func listGroups(ctx context.Context, e *engine.Engine, stdout *os.File) error {
	sums := map[string]*groupSummary{}
	for p := range e.Partitions() {
		gs, err := e.StreamGroups(ctx, p)
		if err != nil {
			return err
		}
		for _, g := range gs {
			s := sums[g.Name]
			if s == nil {
				s = &groupSummary{}
				sums[g.Name] = s
			}
			s.partitions++
			s.unacked += g.State.Unacked
			if g.State.Unacked == 0 {
				continue
			}
			// The oldest entry at or above the floor (the floor's own time
			// is the last delivery's, or zero for a group never read).
			err := e.ScanStream(ctx, p, g.State.Floor, 1, func(es []engine.StreamEntry) error {
				id, err := engine.ParseStreamID(es[0].ID)
				if err == nil && (s.oldest.IsZero() || id.Less(s.oldest)) {
					s.oldest = id
				}
				return errStopScan
			})
			if err != nil && !errors.Is(err, errStopScan) {
				return err
			}
		}
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(stdout, "%-20s %10s %12s %s\n", "GROUP", "PARTITIONS", "UNACKED", "OLDEST UNACKED")
	for _, n := range names {
		s := sums[n]
		age := "-"
		if !s.oldest.IsZero() {
			age = time.Since(time.UnixMilli(int64(s.oldest.Ms))).Round(time.Second).String()
		}
		note := ""
		if n != persisterGroup && !slices.Contains(persist.DownstreamGroups, n) {
			note = "  (not read by this program)"
		}
		fmt.Fprintf(stdout, "%-20s %10d %12d %s%s\n", n, s.partitions, s.unacked, age, note)
	}
	return nil
}

func forgetGroup(ctx context.Context, e *engine.Engine, name string, stdout *os.File) error {
	var (
		parts   int
		unacked int64
	)
	for p := range e.Partitions() {
		st, ok, err := e.GroupState(ctx, p, name)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		gone, err := e.DestroyGroup(ctx, p, name)
		if err != nil {
			return err
		}
		if gone {
			parts++
			unacked += st.Unacked
		}
	}
	if parts == 0 {
		return fmt.Errorf("no consumer group %q on any of the %d partitions (`inventory groups` lists them)", name, e.Partitions())
	}
	fmt.Fprintf(stdout, "forgot group %s on %d partitions (%d entries it had not acknowledged)\n", name, parts, unacked)
	return nil
}
