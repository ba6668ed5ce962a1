package testsupport

import (
	"testing"
	"time"
)

// pollInterval is how often Poll and WaitFor look at their condition: a
// polling interval, not a wait for work.
const pollInterval = 10 * time.Millisecond

// WaitFor polls cond until it holds, failing the test when d passes first.
// what names the wait in the failure.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(d, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// Poll polls cond until it holds (true) or d passes (false).
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}
