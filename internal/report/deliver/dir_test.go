package deliver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirDelivers(t *testing.T) {
	tests := []struct {
		name     string
		existing bool // an older delivery of the same name is there
	}{
		{"new directory", false},
		{"replaces older files", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := writeDelivery(t)
			dest := filepath.Join(t.TempDir(), "reports", "weekly")
			if tt.existing {
				if err := os.MkdirAll(dest, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, p := range d.files() {
					if err := os.WriteFile(filepath.Join(dest, filepath.Base(p)), []byte("old"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := (Dir{Path: dest}).Deliver(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dest)
			if len(entries) != 2 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %v, want the report and manifest only (no temporary files)", names)
			}
			for _, p := range d.files() {
				want, _ := os.ReadFile(p)
				got, err := os.ReadFile(filepath.Join(dest, filepath.Base(p)))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %v, content equal %v", filepath.Base(p), err, bytes.Equal(got, want))
				}
			}
		})
	}
}

// TestDirFailureLeavesNoTemporary: a report that cannot be read fails the
// delivery, and nothing half-written stays in the directory.
func TestDirFailureLeavesNoTemporary(t *testing.T) {
	d := writeDelivery(t)
	d.Manifest = filepath.Join(t.TempDir(), "missing.manifest.json")
	dest := t.TempDir()
	err := (Dir{Path: dest}).Deliver(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), "missing.manifest.json") {
		t.Fatalf("error %v, want one naming the missing manifest", err)
	}
	entries, _ := os.ReadDir(dest)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
