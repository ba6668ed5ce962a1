package admin

import (
	"runtime/debug"
	"strings"
)

// Build describes the running binary as the Go toolchain recorded it
// (runtime/debug.ReadBuildInfo).
type Build struct {
	// Version is the main module's version: vX.Y.Z for a binary built by
	// `go install github.com/shelfline/inventory/cmd/inventory@vX.Y.Z`; a
	// pseudo-version or "(devel)" for one built in a checkout.
	Version string
	// Revision is the VCS revision the binary was built from, when the build
	// recorded one (a build in a git checkout); empty otherwise.
	Revision string
	// Modified is set when the checkout had uncommitted changes.
	Modified bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// ReadBuild returns the running binary's Build. A binary without build
// information (rare: built without module support) reports "(devel)".
func ReadBuild() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{Version: develVersion}
	}
	return BuildOf(bi)
}

const develVersion = "(devel)"

// BuildOf returns the Build that bi describes.
func BuildOf(bi *debug.BuildInfo) Build {
	b := Build{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if b.Version == "" {
		b.Version = develVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String returns the version as `inventory version` prints it: the module
// version, with the short revision after a "(devel)" one (a pseudo-version
// names its revision already), and "+dirty" for a modified checkout unless
// the version says so.
func (b Build) String() string {
	v := b.Version
	if v == develVersion && b.Revision != "" {
		v += " " + b.ShortRevision()
	}
	if b.Modified && !strings.HasSuffix(v, "+dirty") {
		v += "+dirty"
	}
	return v
}

// ShortRevision returns the first 12 characters of Revision.
func (b Build) ShortRevision() string {
	if len(b.Revision) > 12 {
		return b.Revision[:12]
	}
	return b.Revision
}
