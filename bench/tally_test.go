package bench

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMergedHistogramEqualsAllSamples: three processes' tallies, sent as
// JSON and merged, hold exactly the histogram of every sample recorded in
// one place: merging adds bucket counts, it never averages percentiles.
func TestMergedHistogramEqualsAllSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := newTally(2)
	merged := newTally(2)
	for p := 0; p < 3; p++ {
		part := newTally(2)
		for i := 0; i < 5000; i++ {
			// A long-tailed mix: most fast, a few very slow.
			d := time.Duration(50+rng.IntN(2000)) * time.Microsecond
			if rng.IntN(100) == 0 {
				d = time.Duration(rng.IntN(3000)) * time.Millisecond
			}
			at := time.Duration(rng.IntN(4000)) * time.Millisecond
			op := allOps[rng.IntN(len(allOps))]
			part.record(op, int(at/(2*time.Second)), at, d, nil, 0)
			all.record(op, int(at/(2*time.Second)), at, d, nil, 0)
		}
		b, err := json.Marshal(part)
		require.NoError(t, err)
		var back tally
		require.NoError(t, json.Unmarshal(b, &back))
		merged.merge(&back)
	}
	for _, op := range allOps {
		require.True(t, all.Ops[op].Latency.Equals(merged.Ops[op].Latency.Histogram), op)
		for s := 0; s < 2; s++ {
			require.True(t, all.Ops[op].Stages[s].Equals(merged.Ops[op].Stages[s].Histogram), "%s stage %d", op, s)
		}
		require.Equal(t, all.Ops[op].OK, merged.Ops[op].OK)
	}
	require.Len(t, merged.Seconds, len(all.Seconds))
	for i := range all.Seconds {
		for op, h := range all.Seconds[i].Ops {
			require.True(t, h.Equals(merged.Seconds[i].Ops[op].Histogram), "second %d %s", i, op)
		}
	}
}

// TestScheduleRamps: a ramp's iterations are due where the integral of the
// rate says, and the count of a profile is its area.
func TestScheduleRamps(t *testing.T) {
	s := newSchedule(Plan{Stages: []Stage{{Duration: 10 * time.Second, Rate: 100}, {Duration: 5 * time.Second, Rate: 100}}})
	require.InDelta(t, 500+500, s.total, 1e-9)
	at, ok := s.at(125) // 0→100 over 10 s: 125 iterations by t where 5·t² = 125, t = 5 s
	require.True(t, ok)
	require.InDelta(t, 5.0, at.Seconds(), 1e-6)
	at, ok = s.at(750)
	require.True(t, ok)
	require.InDelta(t, 12.5, at.Seconds(), 1e-6)
	_, ok = s.at(1000)
	require.False(t, ok)
	prev := time.Duration(-1)
	for n := int64(0); n < 1000; n++ {
		at, ok := s.at(n)
		require.True(t, ok)
		require.GreaterOrEqual(t, at, prev, "due times never go back")
		prev = at
	}
	require.InDelta(t, 50, s.rateAt(5*time.Second), 1e-9)
}
