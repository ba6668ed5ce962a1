package chaos

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/internal/testsupport"
)

// quiet drops go-redis' own log lines (a dial failure per connection while
// Redis is down on purpose).
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	if role := os.Getenv(envChild); role != "" {
		os.Exit(childMain(role))
	}
	code := m.Run()
	testsupport.RemoveBinary()
	os.Exit(code)
}
