package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ReadyEpoch returns partition p's readiness marker (ReadyKey): the unix
// milliseconds at which it was last marked ready, as stored, or "" when the
// partition is not ready. Every rebuild sets a new one, so a marker that
// changed between two reads tells that the partition was rebuilt meanwhile.
func (e *Engine) ReadyEpoch(ctx context.Context, p int) (string, error) {
	v, err := e.rdb.Get(ctx, e.ReadyKey(p)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("partition %d readiness marker: %w", p, err)
	}
	return v, nil
}

// PartitionsNotReady returns those of partitions that have no readiness
// marker, in their order, asking Redis in one round trip.
func (e *Engine) PartitionsNotReady(ctx context.Context, partitions []int) ([]int, error) {
	cmds := make([]*redis.IntCmd, len(partitions))
	_, err := e.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range partitions {
			cmds[i] = pipe.Exists(ctx, e.ReadyKey(p))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("readiness markers: %w", err)
	}
	var out []int
	for i, c := range cmds {
		if c.Val() == 0 {
			out = append(out, partitions[i])
		}
	}
	return out, nil
}
