// Package testdata locates test data for tests: the project's own files
// under testdata/ at the repository root, which cover every record shape
// the tests need, and, as an extra, the larger reference corpus kept
// outside the repository (../shared/testdata relative to the root, or
// $SSPR_SHARED_TESTDATA), whose licences do not allow shipping all of it.
package testdata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SharedEnv overrides the location of the shared corpus.
const SharedEnv = "SSPR_SHARED_TESTDATA"

// Root returns the repository root: the nearest directory above the working
// directory (a package directory under go test) holding go.mod.
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := root()
	if err != nil {
		tb.Fatalf("testdata: %v", err)
	}
	return dir
}

func root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Project returns the repository's own testdata directory.
func Project(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Root(tb), "testdata")
}

// Shared returns the shared reference corpus directory (holding entra/ and
// sspr/). When it is missing the test is skipped with the reason: the
// repository's own data covers the same shapes. It fails instead when
// SSPR_SHARED_TESTDATA names a corpus that is not there.
func Shared(tb testing.TB) string {
	tb.Helper()
	dir, ok := SharedDir()
	if !ok {
		Missing(tb, "shared test data not found at %s (place the shared corpus beside the repository or set %s)", dir, SharedEnv)
	}
	return dir
}

// SharedDir returns where the shared corpus is expected and whether it is
// there, for tests that can run a reduced check without it.
func SharedDir() (string, bool) {
	dir := os.Getenv(SharedEnv)
	if dir == "" {
		r, err := root()
		if err != nil {
			return "", false
		}
		dir = filepath.Join(filepath.Dir(r), "shared", "testdata")
	}
	st, err := os.Stat(filepath.Join(dir, "entra"))
	return dir, err == nil && st.IsDir()
}

// Missing skips the test with the reason, or fails it when Required.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if Required() {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// Required reports whether the shared corpus must be there: only when
// SSPR_SHARED_TESTDATA names it, so that a mistyped path fails rather than
// quietly skipping. CI=true and SSPR_REQUIRE_SERVERS=1 do not require it:
// the repository's tests pass on the repository alone.
func Required() bool {
	return os.Getenv(SharedEnv) != ""
}

// Files returns the regular files of dir whose names match pattern
// (filepath.Match syntax), sorted; it fails the test when there are none.
func Files(tb testing.TB, dir, pattern string) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		tb.Fatalf("testdata: glob %s: %v", pattern, err)
	}
	var out []string
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("testdata: no files match %s in %s", pattern, dir)
	}
	return out
}
