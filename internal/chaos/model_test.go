package chaos

import (
	"fmt"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The sequential model of one item for the linearizability check: its
// on_hand, reserved and version, and the operations clients run on it.

type opKind int

const (
	opRead opKind = iota
	opSet
	opAdjust
	opCheckout
	opReserve
	opCommit
	opRelease
)

func (k opKind) String() string {
	return [...]string{"read", "set", "adjust", "checkout", "reserve", "commit", "release"}[k]
}

// itemState is an item as the model and the clients see it.
type itemState struct {
	OnHand, Reserved, Version int64
}

// opInput is one operation on one item ("store/sku"); N is the quantity,
// the delta or the absolute on_hand.
type opInput struct {
	Item string
	Kind opKind
	N    int64
}

// opOutput is what the client learned. Unknown: the outcome never came
// back (timeout, cut connection, retries exhausted): the operation may or
// may not have applied. OK: applied (HasState: with the item after it).
// Refused: a definitive refusal that changed nothing (insufficient stock,
// below reserved).
type opOutput struct {
	// Noop: a definitive answer that changed nothing and that the model
	// cannot judge (a commit of a hold Redis lost: not found).
	Noop     bool
	Unknown  bool
	OK       bool
	Refused  bool
	HasState bool
	State    itemState
}

// apply returns the state after in, and whether in can apply to s.
func apply(s itemState, in opInput) (itemState, bool) {
	switch in.Kind {
	case opRead:
		return s, true
	case opSet:
		if in.N < s.Reserved {
			return s, false
		}
		if in.N == s.OnHand && s.Version > 0 {
			return s, true // no change, no new version
		}
		return itemState{in.N, s.Reserved, s.Version + 1}, true
	case opAdjust:
		if s.OnHand+in.N < s.Reserved || s.OnHand+in.N < 0 {
			return s, false
		}
		return itemState{s.OnHand + in.N, s.Reserved, s.Version + 1}, true
	case opCheckout:
		if s.OnHand-s.Reserved < in.N {
			return s, false
		}
		return itemState{s.OnHand - in.N, s.Reserved, s.Version + 1}, true
	case opReserve:
		if s.OnHand-s.Reserved < in.N {
			return s, false
		}
		return itemState{s.OnHand, s.Reserved + in.N, s.Version + 1}, true
	case opCommit:
		if s.Reserved < in.N {
			return s, false
		}
		return itemState{s.OnHand - in.N, s.Reserved - in.N, s.Version + 1}, true
	case opRelease:
		if s.Reserved < in.N {
			return s, false
		}
		return itemState{s.OnHand, s.Reserved - in.N, s.Version + 1}, true
	}
	panic("unknown op")
}

// itemModel is the porcupine model, partitioned by item. init gives each
// item's state when the history starts.
func itemModel(init map[string]itemState) porcupine.Model {
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var order []string
			for _, op := range h {
				k := op.Input.(opInput).Item
				if _, ok := by[k]; !ok {
					order = append(order, k)
				}
				by[k] = append(by[k], op)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, k := range order {
				out = append(out, by[k])
			}
			return out
		},
		// The state carries the item's name so that Init can be per item.
		Init: func() any { return modelState{} },
		Step: func(state, input, output any) (bool, any) {
			st := state.(modelState)
			in, out := input.(opInput), output.(opOutput)
			s := st.S
			if !st.Started {
				s = init[in.Item]
			}
			next, ok := apply(s, in)
			ns := modelState{Started: true, S: next}
			switch {
			case out.Unknown:
				// Applied here, or (linearized after every other
				// operation) never: both are covered.
				if ok {
					return true, ns
				}
				return true, modelState{Started: true, S: s}
			case out.Noop:
				return true, modelState{Started: true, S: s}
			case in.Kind == opRead:
				return out.OK && out.State == s, modelState{Started: true, S: s}
			case out.Refused:
				return !ok, modelState{Started: true, S: s}
			case out.OK:
				if !ok {
					return false, st
				}
				if out.HasState && out.State != next {
					return false, st
				}
				return true, ns
			}
			return false, st
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(opInput), output.(opOutput)
			res := "?"
			switch {
			case out.Unknown:
				res = "unknown"
			case out.Refused:
				res = "refused"
			case out.HasState:
				res = fmt.Sprintf("%+v", out.State)
			case out.OK:
				res = "ok"
			}
			return fmt.Sprintf("%s %s(%d) -> %s", in.Item, in.Kind, in.N, res)
		},
		DescribeState: func(state any) string { return fmt.Sprintf("%+v", state.(modelState).S) },
	}
}

type modelState struct {
	Started bool
	S       itemState
}

// recorder collects a history of operations from many goroutines.
type recorder struct {
	mu   sync.Mutex
	base time.Time
	ops  []porcupine.Operation
	init map[string]itemState
}

func newRecorder(init map[string]itemState) *recorder {
	return &recorder{base: time.Now(), init: init}
}

func (r *recorder) now() int64 { return int64(time.Since(r.base)) }

// add records an operation that was called at call; its return time is now,
// or never for an unknown outcome.
func (r *recorder) add(client int, in opInput, call int64, out opOutput) {
	ret := r.now()
	if out.Unknown {
		ret = math.MaxInt64
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

// check verifies the history is linearizable; on failure it writes a
// visualization into the test's temp dir.
func (r *recorder) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	r.mu.Unlock()
	checkHistory(t, "", r.init, ops)
}

// checkEpochs checks a history cut in two by a loss of Redis' state at
// time cut: the operations called before it (those that had not returned
// by then count as unknown: lost, or applied), and the operations that had
// not returned by then, from init2 (the state Redis was rebuilt to).
func (r *recorder) checkEpochs(t testing.TB, cut int64, init2 map[string]itemState) {
	t.Helper()
	r.mu.Lock()
	all := append([]porcupine.Operation(nil), r.ops...)
	r.mu.Unlock()
	var one, two []porcupine.Operation
	for _, op := range all {
		if op.Call < cut {
			o := op
			if o.Return > cut {
				o.Output, o.Return = opOutput{Unknown: true}, math.MaxInt64
			}
			if in := o.Input.(opInput); in.Kind != opRead || !o.Output.(opOutput).Unknown {
				one = append(one, o)
			}
		}
		if op.Return > cut {
			two = append(two, op)
		}
	}
	checkHistory(t, "before the loss: ", r.init, one)
	checkHistory(t, "after the rebuild: ", init2, two)
}

func checkHistory(t testing.TB, what string, init map[string]itemState, ops []porcupine.Operation) {
	t.Helper()
	if len(ops) == 0 {
		t.Errorf("linearizability: %sempty history", what)
		return
	}
	m := itemModel(init)
	res, info := porcupine.CheckOperationsVerbose(m, ops, pick(30*time.Second, 120*time.Second))
	switch res {
	case porcupine.Ok:
		t.Logf("linearizability: %s%d operations: ok", what, len(ops))
	case porcupine.Unknown:
		t.Logf("linearizability: %s%d operations: checker timed out (not proven)", what, len(ops))
	default:
		path := t.TempDir() + "/history.html"
		if err := porcupine.VisualizePath(m, info, path); err == nil {
			if keep := os.Getenv("INVENTORY_CHAOS_KEEP"); keep != "" {
				_ = copyFile(path, keep)
			}
		}
		t.Errorf("linearizability: %shistory of %d operations is NOT linearizable (visualization: %s)", what, len(ops), path)
	}
}
