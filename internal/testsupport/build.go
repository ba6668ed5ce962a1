package testsupport

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var binary struct {
	once sync.Once
	mu   sync.Mutex
	dir  string
	path string
	err  error
}

// BuildBinary builds cmd/inventory, once per test binary, into a temporary
// directory and returns the executable's path. Call RemoveBinary from
// TestMain after m.Run to remove it.
func BuildBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "inventory-bin-")
		binary.mu.Lock()
		binary.dir = dir
		binary.mu.Unlock()
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "inventory")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binary.path, "github.com/shelfline/inventory/cmd/inventory").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build ./cmd/inventory: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// RemoveBinary removes what BuildBinary built, if it built anything.
func RemoveBinary() {
	binary.mu.Lock()
	defer binary.mu.Unlock()
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
		binary.dir = ""
	}
}
