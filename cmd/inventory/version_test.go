package main

import (
	"archive/zip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// repoRoot is the module's root, two levels up from this package.
const repoRoot = "../.."

func goCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// A binary built in the checkout reports the commit it was built from.
func TestVersionOfACheckoutBuild(t *testing.T) {
	t.Parallel()
	rev, err := exec.Command("git", "-C", repoRoot, "rev-parse", "HEAD").Output()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "inventory")
	goCmd(t, repoRoot, nil, "build", "-buildvcs=true", "-o", bin, "./cmd/inventory")
	out, err := exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), strings.TrimSpace(string(rev))[:12], "the revision is in %q", out)
	require.Regexp(t, `^inventory \S.* go1\.\d+`, string(out))
}

// A binary made by `go install …/cmd/inventory@vX.Y.Z` reports vX.Y.Z: the
// module is served at that version from a module proxy of files made here
// (the work tree as it is), the dependencies from the download cache of the
// module cache, into a module cache of the test's own.
func TestVersionOfAGoInstall(t *testing.T) {
	t.Parallel()
	const mod, ver = "github.com/shelfline/inventory", "v1.98.7"
	proxy := t.TempDir()
	dir := filepath.Join(proxy, mod, "@v")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ver+".mod"), gomod, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ver+".info"), []byte(`{"Version":"`+ver+`","Time":"2026-01-02T03:04:05Z"}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "list"), []byte(ver+"\n"), 0o644))

	files, err := exec.Command("git", "-C", repoRoot, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	require.NoError(t, err)
	zf, err := os.Create(filepath.Join(dir, ver+".zip"))
	require.NoError(t, err)
	zw := zip.NewWriter(zf)
	for _, name := range strings.Split(strings.TrimSpace(string(files)), "\n") {
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		require.NoError(t, err)
		w, err := zw.Create(mod + "@" + ver + "/" + name)
		require.NoError(t, err)
		_, err = w.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, zf.Close())

	modcache := strings.TrimSpace(goCmd(t, repoRoot, nil, "env", "GOMODCACHE"))
	ownCache := t.TempDir()
	env := []string{"GOMODCACHE=" + ownCache, "GOPROXY=file://" + proxy + ",file://" + filepath.Join(modcache, "cache", "download"),
		"GOSUMDB=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local"}
	t.Cleanup(func() { goCmd(t, repoRoot, env, "clean", "-modcache") }) // its files are read-only
	gobin := t.TempDir()
	goCmd(t, t.TempDir(), append(env, "GOBIN="+gobin), "install", "-trimpath", mod+"/cmd/inventory@"+ver)
	out, err := exec.Command(filepath.Join(gobin, "inventory"), "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.True(t, strings.HasPrefix(string(out), "inventory "+ver+" go1."), "%q", out)
}
