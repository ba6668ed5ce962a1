package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// demoStores are the furniture chain's 30 stores; demoWarehouse and
// demoWeb stock the same catalogue.
var demoStores = []string{
	"amsterdam", "antwerp", "barcelona", "berlin", "bologna", "bordeaux", "bristol", "brno", "cologne", "copenhagen",
	"dublin", "edinburgh", "gdansk", "geneva", "gothenburg", "hamburg", "helsinki", "krakow", "leeds", "lisbon",
	"lyon", "madrid", "milan", "munich", "oslo", "porto", "prague", "stockholm", "vienna", "zurich",
}

var demoProducts = []struct {
	kind   string
	models []string
	stock  int
}{
	{"sofa", []string{"kivik", "soderhamn", "landskrona", "vimle", "friheten"}, 12},
	{"armchair", []string{"poang", "strandmon", "ekero", "koarp"}, 15},
	{"bed", []string{"malm", "hemnes", "brimnes", "songesand", "tarva"}, 10},
	{"wardrobe", []string{"pax", "brimnes", "kleppstad"}, 8},
	{"desk", []string{"micke", "alex", "bekant", "linnmon"}, 20},
	{"chair", []string{"markus", "adde", "ingolf", "stefan", "odger"}, 40},
	{"table", []string{"lisabo", "ekedalen", "melltorp", "norden"}, 14},
	{"shelf", []string{"billy", "kallax", "hemnes", "lack"}, 30},
	{"lamp", []string{"hektar", "ranarp", "lersta", "tertial", "foto"}, 50},
	{"rug", []string{"stoense", "lohals", "vindum"}, 25},
	{"mattress", []string{"vesteroy", "valevag", "abyggda"}, 18},
	{"drawer", []string{"malm", "hemnes", "koppang"}, 16},
}

var demoColours = []string{"white", "black", "oak", "grey", "blue"}

// demoCatalogue returns the chain's SKUs: every product in every colour.
func demoCatalogue() []string {
	var out []string
	for _, p := range demoProducts {
		for _, m := range p.models {
			for _, c := range demoColours {
				out = append(out, p.kind+"-"+m+"-"+c)
			}
		}
	}
	return out
}

func runSeed(ctx context.Context, args []string, stdout, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("seed", "Load the demo furniture chain through the engine: 30 stores, a warehouse and a web shop,\n"+
		"about 250 SKUs (a few with a flash-sale purchase limit). Skipped when the deployment already has stores.", stderr, os.Getenv)
	cfg.register(fs)
	demo := fs.Bool("demo", "INVENTORY_SEED_DEMO", false, "load the demo chain (required)")
	force := fs.Bool("force", "INVENTORY_SEED_FORCE", false, "seed even when stores exist (sets their counts again)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !*demo {
		fmt.Fprintln(stderr, "seed: only --demo is supported")
		fs.Usage()
		return errUsage
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	d, stop, err := start(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stop()
	if err := prepare(ctx, &cfg, d, true); err != nil {
		return err
	}
	if *force {
		if d.pool != nil {
			if err := rebuildMissing(ctx, d); err != nil {
				return err
			}
		}
		n, err := seedDemo(ctx, d.e, time.Now().UnixNano())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "seed: %d items in %d stores\n", n, len(demoStores)+2)
		return nil
	}
	return seedIfEmpty(ctx, d, stdout)
}

// seedIfEmpty loads the demo chain unless the deployment has stores.
func seedIfEmpty(ctx context.Context, d *deps, stdout *os.File) error {
	if d.pool != nil {
		// The partitions become writable once rebuilt from the ledger
		// (instant for an empty one); serve's rebuilder may be doing it too.
		if err := rebuildMissing(ctx, d); err != nil {
			return err
		}
	}
	stores, err := d.e.Stores(ctx)
	if err != nil {
		return err
	}
	if len(stores) > 0 {
		fmt.Fprintf(stdout, "seed: %d stores exist already; nothing to do (seed --demo --force seeds anyway)\n", len(stores))
		return nil
	}
	n, err := seedDemo(ctx, d.e, time.Now().UnixNano())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seed: %d items in %d stores\n", n, len(demoStores)+2)
	return nil
}

func rebuildMissing(ctx context.Context, d *deps) error {
	rb, err := persist.NewRebuilder(d.e, d.pool, persist.RebuilderConfig{Logger: d.log.Named("rebuilder")})
	if err != nil {
		return err
	}
	for p := 0; p < d.e.Partitions(); p++ {
		for attempt := 0; ; attempt++ {
			ok, err := d.e.PartitionReady(ctx, p)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			err = rb.RebuildPartition(ctx, p)
			if err == nil {
				break
			}
			if !errors.Is(err, persist.ErrRebuildInProgress) || attempt > 100 {
				return fmt.Errorf("rebuild partition %d: %w", p, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// seedDemo sets the demo chain's items through the engine and returns how
// many it set. Each store carries about two thirds of the catalogue.
func seedDemo(ctx context.Context, e *engine.Engine, seed int64) (int, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	cat := demoCatalogue()
	stock := map[string]int{}
	for _, p := range demoProducts {
		for _, m := range p.models {
			for _, c := range demoColours {
				stock[p.kind+"-"+m+"-"+c] = p.stock
			}
		}
	}
	var reqs []engine.SetRequest
	all := append(append([]string{}, demoStores...), "warehouse", "web")
	for _, st := range all {
		for i, sku := range cat {
			if st != "warehouse" && st != "web" && rng.IntN(3) == 0 {
				continue
			}
			base := stock[sku]
			oh := int64(rng.IntN(base*2 + 1))
			if st == "warehouse" {
				oh = int64(base * 40)
			}
			rp := int64(base / 4)
			req := engine.SetRequest{Store: st, SKU: sku, OnHand: oh, ReorderPoint: &rp, Reason: "demo seed"}
			if i%50 == 0 && st == "web" { // flash-sale items
				limit := int64(2)
				req.MaxPerCustomer = &limit
				req.OnHand = 100
			}
			reqs = append(reqs, req)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, r := range reqs {
		g.Go(func() error {
			_, err := e.Set(gctx, r, engine.Op{Principal: "seed"})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return len(reqs), nil
}
