package testsupport

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// ChromiumPath returns the Chromium the browser tests drive: $CHROMIUM when
// set, else chromium (Debian's package, which internal/services/ensure.sh
// installs) or chromium-browser on the PATH. A test that needs it fails
// when there is none: it is never skipped.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	require.FailNow(t, "chromium is not installed", "the browser tests need it: run internal/services/ensure.sh as root (apt-get install chromium), or set CHROMIUM")
	return ""
}

// Browser starts a headless Chromium of its own (a fresh user data
// directory, no sandbox, no GPU, no background traffic) for the test and
// returns a chromedp context on a new tab, closed when the test ends. Every
// action run on the context is bounded by timeout.
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// The first Run starts the browser; fail here, not in the test's steps.
	require.NoError(t, chromedp.Do(bctx), "start chromium")
	ctx, cancel := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() {
		cancel()
		cancelBrowser()
		cancelAlloc()
	})
	return ctx
}
