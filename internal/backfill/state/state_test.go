package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSaveReopen: what is saved is what is read back; the file is
// private and no temporary file is left behind.
func TestSaveReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	s, err := Open(path, "blob", "acct/container")
	if err != nil {
		t.Fatal(err)
	}
	h := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)
	s.Update(func(f *File) {
		f.Units["a"] = &Unit{Tenant: "t", From: h, To: h.Add(time.Hour), Version: `"0x8D"`, Line: 3, Offset: 300,
			Counts: Counts{Records: 3, SSPR: 1, First: h.Add(time.Minute), Last: h.Add(2 * time.Minute)}, Hours: map[time.Time]int64{h: 3}}
	})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the state file", len(entries))
	}
	r, err := Open(path, "blob", "acct/container")
	if err != nil {
		t.Fatal(err)
	}
	var u Unit
	r.View(func(f *File) { u = *f.Units["a"] })
	if u.Line != 3 || u.Offset != 300 || u.Hours[h] != 3 || !u.Counts.Last.Equal(h.Add(2*time.Minute)) || u.Version != `"0x8D"` {
		t.Errorf("read back %+v", u)
	}
}

// TestMismatch: a state file of another command or source is refused,
// saying which it is.
func TestMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, _ := Open(path, "graph", "tenant-a")
	s.Update(func(*File) {})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, "blob", "acct/container")
	var me *MismatchError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "backfill graph") {
		t.Errorf("other command: %v", err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, "graph", "tenant-a"); err == nil || !strings.Contains(err.Error(), "not a backfill state file") {
		t.Errorf("garbage: %v", err)
	}
}

// TestSaveOnlyWhenChanged: an unchanged store does not touch the file.
func TestSaveOnlyWhenChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, _ := Open(path, "graph", "x")
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a store with nothing recorded wrote the file: %v", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/state")
	a, err := DefaultPath("blob", "/etc/sspr/config.toml", "acct/c")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DefaultPath("graph", "/etc/sspr/config.toml", "acct/c")
	c, _ := DefaultPath("blob", "/etc/sspr/other.toml", "acct/c")
	if !strings.HasPrefix(a, "/var/state/sspr-exporter/backfill-blob-") || a == b || a == c {
		t.Errorf("paths %s %s %s: want one per command and config under $XDG_STATE_HOME", a, b, c)
	}
}

func TestCountsAdd(t *testing.T) {
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var c Counts
	c.Add(Counts{Records: 2, SSPR: 1, First: t1.Add(time.Hour), Last: t1.Add(time.Hour)})
	c.Add(Counts{Records: 1, Dropped: 1})
	c.Add(Counts{SSPR: 1, First: t1, Last: t1})
	if c.Records != 3 || c.SSPR != 2 || c.Dropped != 1 || !c.First.Equal(t1) || !c.Last.Equal(t1.Add(time.Hour)) {
		t.Errorf("%+v", c)
	}
}
