// Package browser holds the dashboard's tests in a real browser: Debian's
// Chromium, headless, driven over the DevTools protocol (chromedp) against
// a real API server over real Redis and PostgreSQL. There is no code here
// but the tests; internal/services/ensure.sh installs Chromium when it is
// absent, and a test that cannot find it fails.
//
// Screenshots of every view go to each test's artifact directory (go test
// -artifacts keeps them); with INVENTORY_UPDATE_SCREENSHOTS=1 they are
// also copied to docs/screenshots/ for the README.
package browser
