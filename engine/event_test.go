package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

func TestParseEvent(t *testing.T) {
	packed := map[string]any{"s": "s1", "k": "sofa", "t": "RESERVE", "n": "7,0,2,10,2,-1,3,1764000000000,1764000060000",
		"rid": "3-ab", "c": "ann", "op": "k1", "rsn": "", "pr": "web"}
	ev, err := engine.ParseEvent("1-0", packed)
	require.NoError(t, err)
	require.Equal(t, int64(7), ev.Version)
	require.Equal(t, int64(2), ev.DeltaReserved)
	require.Equal(t, int64(10), ev.OnHand)
	require.Nil(t, ev.ReorderPoint)
	require.Equal(t, int64(3), *ev.MaxPerCustomer)
	require.Equal(t, time.UnixMilli(1764000060000).UTC(), *ev.ExpiresAt)
	require.Equal(t, "ann", ev.Customer)

	old := map[string]any{"s": "s1", "k": "sofa", "v": "7", "t": "RESERVE", "dh": "0", "dr": "2", "oh": "10", "rs": "2",
		"rp": "-1", "mpc": "3", "rid": "3-ab", "c": "ann", "op": "k1", "rsn": "", "pr": "web", "ts": "1764000000000", "x": "1764000060000"}
	ev2, err := engine.ParseEvent("1-0", old)
	require.NoError(t, err)
	ev2.StreamID, ev.StreamID = "", ""
	require.Equal(t, ev, ev2)

	// the engine's format: every field in e, tab-separated
	one := map[string]any{"e": "s1\tsofa\tRESERVE\t7,0,2,10,2,-1,3,1764000000000,1764000060000\t3-ab\tann\tk1\t\tweb"}
	ev3, err := engine.ParseEvent("1-0", one)
	require.NoError(t, err)
	ev3.StreamID = ""
	require.Equal(t, ev, ev3)
	mv, err := engine.ParseEvent("1-0", map[string]any{"e": "s1\tsofa\tMOVE\t8,0,0,10,0,-1,-1,1764000000000,0,0,2,0,0,0,-1,0,2,0,0,0\t\t\tk2\tbroken\tweb\tavailable,damaged,2"})
	require.NoError(t, err)
	require.Equal(t, "available", mv.From)
	require.Equal(t, "damaged", mv.To)
	require.Equal(t, int64(2), mv.Qty)
	require.Equal(t, "broken", mv.Reason)
	require.Equal(t, int64(2), mv.Damaged)

	for name, bad := range map[string]map[string]any{
		"e too short":    {"e": "s1\tsofa\tSET\t1,1,0,1,0,-1,-1,1,0\t\t\t\t"},
		"e too long":     {"e": "s1\tsofa\tSET\t1,1,0,1,0,-1,-1,1,0\t\t\t\t\t\tavailable,damaged,1\tx"},
		"e bad n":        {"e": "s1\tsofa\tSET\t1,1,0\t\t\t\t\t"},
		"e bad mv":       {"e": "s1\tsofa\tMOVE\t1,0,0,1,0,-1,-1,1,0\t\t\t\t\t\tavailable,nowhere,1"},
		"e not a string": {"e": 5},
		"e empty store":  {"e": "\tsofa\tSET\t1,1,0,1,0,-1,-1,1,0\t\t\t\t\t"},
		"short n":        {"s": "s1", "k": "sofa", "t": "SET", "n": "1,2"},
		"letters in n":   {"s": "s1", "k": "sofa", "t": "SET", "n": "1,x,0,1,0,-1,-1,1,0"},
		"unknown type":   {"s": "s1", "k": "sofa", "t": "STEAL", "n": "1,1,0,1,0,-1,-1,1,0"},
		"reserved > oh":  {"s": "s1", "k": "sofa", "t": "SET", "n": "1,1,0,1,5,-1,-1,1,0"},
		"version 0":      {"s": "s1", "k": "sofa", "t": "SET", "n": "0,1,0,1,0,-1,-1,1,0"},
		"bad store":      {"s": "s 1", "k": "sofa", "t": "SET", "n": "1,1,0,1,0,-1,-1,1,0"},
		"missing fields": {"s": "s1", "k": "a", "v": "oops"},
	} {
		_, err := engine.ParseEvent("1-0", bad)
		require.Error(t, err, name)
	}
}
