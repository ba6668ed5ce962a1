package chaos

import (
	"fmt"
	"os"
	"sync/atomic"
)

type atomicInt64 = atomic.Int64

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

func fmtSscan(s string, f *float64) (int, error) { return fmt.Sscan(s, f) }

func formatInt(n int64) string { return fmt.Sprint(n) }
