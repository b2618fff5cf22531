package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLocate(t *testing.T) {
	root := Root(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("root %s has no go.mod", root)
	}
	if files := Files(t, Project(t), "sample/*.json"); len(files) != 2 {
		t.Errorf("bundled sample: %v, want 2 files", files)
	}
	t.Setenv(SharedEnv, t.TempDir())
	if dir, ok := SharedDir(); ok {
		t.Errorf("empty directory %s taken for the shared corpus", dir)
	}
	d := t.TempDir()
	if err := os.Mkdir(filepath.Join(d, "entra"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SharedEnv, d)
	if dir, ok := SharedDir(); !ok || dir != d {
		t.Errorf("SharedDir = %s, %v; want %s, true", dir, ok, d)
	}
}

// TestSharedIsAnExtra: without the shared corpus the repository's tests
// still pass on their own data, in CI too; only a corpus asked for by
// SSPR_SHARED_TESTDATA and not found is an error.
func TestSharedIsAnExtra(t *testing.T) {
	t.Setenv("CI", "true")
	t.Setenv("SSPR_REQUIRE_SERVERS", "1")
	t.Setenv(SharedEnv, "")
	if Required() {
		t.Error("a missing corpus nobody asked for fails the tests under CI=true")
	}
	t.Setenv(SharedEnv, filepath.Join(t.TempDir(), "absent"))
	if !Required() {
		t.Errorf("%s names a corpus that is not there, yet its absence is not an error", SharedEnv)
	}
}
