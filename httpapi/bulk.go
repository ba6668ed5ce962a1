package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/engine"
)

// bulkResult is one line's outcome in POST /v1/adjustments: its own status
// and either the item or the problem.
type bulkResult struct {
	Status int          `json:"status"`
	Item   *engine.Item `json:"item,omitempty"`
	Error  *Problem     `json:"error,omitempty"`
}

// lineKey derives the engine's key for line i of a batch sent with key.
// bulkWorkers bounds the lines of one bulk request in flight at once.
const bulkWorkers = 64

func lineKey(key string, i int) string {
	suffix := "#" + strconv.Itoa(i)
	if len(key)+len(suffix) > engine.MaxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	return key + suffix
}

func (s *Server) bulkAdjust(c *fiber.Ctx) error {
	cl := callerOf(c)
	if cl.Role == RoleReader {
		return forbidden("a reader token may not change stock")
	}
	if err := requireJSON(c, false); err != nil {
		return err
	}
	var b bulkBody
	if err := decodeStrict(c.Body(), &b); err != nil {
		return err
	}
	if len(b.Updates) == 0 || len(b.Updates) > MaxBulk {
		return badRequest(fmt.Sprintf("updates must hold 1..%d lines", MaxBulk)).with("field", "updates")
	}
	for i, u := range b.Updates {
		if !cl.canWrite(u.Store) {
			return forbidden(fmt.Sprintf("updates[%d]: this token may only use store %s", i, cl.Store))
		}
	}
	return s.doWriteTimeout(c, s.cfg.RequestTimeout+time.Duration(len(b.Updates))*10*time.Millisecond, func(ctx context.Context, op engine.Op) (result, error) {
		out := make([]bulkResult, len(b.Updates))
		replayed := make([]bool, len(b.Updates))
		line := func(i int) {
			u := b.Updates[i]
			lop := op
			if op.IdempotencyKey != "" {
				lop.Fingerprint = op.Fingerprint + "#" + strconv.Itoa(i)
				lop.IdempotencyKey = lineKey(op.IdempotencyKey, i)
			}
			var err error
			if u.Delta.Null || !u.Delta.Set {
				err = badRequest("delta is required and must be an integer").with("field", "delta")
			} else if verr := validItemIDs(u.Store, u.SKU); verr != nil {
				err = verr
			} else {
				var r engine.ItemResult
				r, err = s.e.Adjust(ctx, engine.AdjustRequest{Store: u.Store, SKU: u.SKU, Delta: u.Delta.V, Reason: u.Reason}, lop)
				if err == nil {
					it := r.Item
					out[i] = bulkResult{Status: http.StatusOK, Item: &it}
					replayed[i] = r.Replayed
					return
				}
			}
			p := problemFor(err)
			if p.Status >= 500 && p.Status != http.StatusServiceUnavailable {
				s.log.Error("bulk adjustment line failed", zapErr(err))
			}
			out[i] = bulkResult{Status: p.Status, Error: p}
			s.m.countProblem(p)
		}
		// Lines of one item apply in the order given; different items
		// apply concurrently, so the engine's group commit batches them.
		groups := map[string][]int{}
		var order []string
		for i, u := range b.Updates {
			k := u.Store + "\x00" + u.SKU
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], i)
		}
		work := make(chan []int)
		var wg sync.WaitGroup
		for w := 0; w < min(bulkWorkers, len(order)); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for idx := range work {
					for _, i := range idx {
						line(i)
					}
				}
			}()
		}
		for _, k := range order {
			work <- groups[k]
		}
		close(work)
		wg.Wait()
		anyReplayed := false
		for _, r := range replayed {
			anyReplayed = anyReplayed || r
		}
		return result{status: http.StatusOK, body: fiber.Map{"results": out}, replayed: anyReplayed}, nil
	})
}
