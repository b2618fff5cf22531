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
