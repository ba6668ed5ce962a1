package engine_test

import (
	"os"
	"testing"
)

// stopShared holds the teardown of process-wide test fixtures (a shared
// Redis Cluster), run after every test.
var stopShared []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range stopShared {
		f()
	}
	os.Exit(code)
}
