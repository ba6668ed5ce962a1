// Command callgrind counts the instructions Redis spends per sale: it drives
// -n one-unit checkouts of one hot SKU through the engine's group commit at
// a batch size of -batch, between callgrind_control -z and -d of the
// redis-server process -pid, which must run under callgrind:
//
//	valgrind --tool=callgrind --callgrind-out-file=/tmp/cg/out.%p \
//	  redis-server --port 6440 --save '' --appendonly no &
//	go run ./bench/callgrind -addr 127.0.0.1:6440 -pid <redis pid> -n 2000 -batch 10 [-nofn]
//	grep summary "$(ls -t /tmp/cg/out.*.* | head -1)"   # divide by -n
//
// -nofn runs the scripts with EVALSHA instead of FCALL (engine.Config
// NoFunctions). Name the pid: callgrind_control without one zeroes and
// dumps every callgrind process of the machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/engine"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6440", "redis")
	n := flag.Int("n", 2000, "sales measured")
	batch := flag.Int("batch", 10, "max batch")
	workers := flag.Int("workers", 40, "callers")
	cg := flag.Bool("cg", true, "zero and dump the counts with callgrind_control")
	nofn := flag.Bool("nofn", false, "EVALSHA instead of FCALL")
	pid := flag.Int("pid", 0, "pid of the redis-server under callgrind (required with -cg)")
	flag.Parse()
	if *cg && *pid == 0 {
		fmt.Fprintln(os.Stderr, "callgrind: -pid is required with -cg")
		os.Exit(2)
	}
	c := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: 8})
	ctx := context.Background()
	var batches, reqs atomic.Int64
	e, err := engine.New(engine.Config{Client: c, Prefix: fmt.Sprintf("cg%d", os.Getpid()), StreamHighWatermark: -1,
		GroupMaxBatch: *batch, NoFunctions: *nofn, OnBatch: func(s int) { batches.Add(1); reqs.Add(int64(s)) }})
	if err != nil {
		panic(err)
	}
	if err := e.Init(ctx); err != nil {
		panic(err)
	}
	if _, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: engine.MaxOnHand}, engine.Op{}); err != nil {
		panic(err)
	}
	// run sells total units from -workers goroutines.
	run := func(total int) {
		var left atomic.Int64
		left.Store(int64(total))
		var wg sync.WaitGroup
		for w := 0; w < *workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if _, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{}); err != nil {
						panic(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	run(500)
	if *cg {
		if out, err := exec.Command("callgrind_control", "-z", strconv.Itoa(*pid)).CombinedOutput(); err != nil {
			panic(string(out))
		}
	}
	batches.Store(0)
	reqs.Store(0)
	run(*n)
	if *cg {
		if out, err := exec.Command("callgrind_control", "-d", strconv.Itoa(*pid)).CombinedOutput(); err != nil {
			panic(string(out))
		}
	}
	fmt.Printf("functions %v ", e.Scripts().UsesFunctions())
	fmt.Printf("sales %d batches %d avg batch %.2f\n", reqs.Load(), batches.Load(), float64(reqs.Load())/float64(batches.Load()))
}
