// Package state is the backfill's checkpoint file: for every unit of input
// (a Graph time slice or an archive blob) how far it has been delivered to
// the outputs, what its records became, and whether it is complete. It is
// written atomically (a temporary file, fsync, rename, fsync of the
// directory), so that a crash at any moment leaves either the previous
// file or the new one, never a torn one.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Version is the file format's version.
const Version = 1

// Counts are what a unit's records became.
type Counts struct {
	Records      int64 `json:"records"`       // audit records read (SSPR or not)
	SSPR         int64 `json:"sspr"`          // ECS documents delivered
	Dropped      int64 `json:"dropped"`       // records that are not SSPR events
	Unsupported  int64 `json:"unsupported"`   // of the dropped: retired preview schema
	DeadLettered int64 `json:"dead_lettered"` // values dead-lettered at decode or normalize
	// First and Last are the earliest and latest @timestamp of the
	// documents delivered.
	First time.Time `json:"first_event,omitzero"`
	Last  time.Time `json:"last_event,omitzero"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Records += o.Records
	c.SSPR += o.SSPR
	c.Dropped += o.Dropped
	c.Unsupported += o.Unsupported
	c.DeadLettered += o.DeadLettered
	if !o.First.IsZero() && (c.First.IsZero() || o.First.Before(c.First)) {
		c.First = o.First
	}
	if !o.Last.IsZero() && o.Last.After(c.Last) {
		c.Last = o.Last
	}
}

// Unit is one unit's checkpoint.
type Unit struct {
	Tenant string `json:"tenant,omitempty"`
	// From and To are the interval the unit covers: the slice queried, or
	// the hour an archive blob was filed under.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Version identifies the content read: a blob's ETag, or the queries
	// of a slice. Another version is read again from its start.
	Version  string    `json:"version,omitempty"`
	Modified time.Time `json:"last_modified,omitzero"`
	// Line and Offset are how many lines and bytes of a blob have been
	// delivered: reading resumes there.
	Line   int64  `json:"line,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Done   bool   `json:"done,omitempty"`
	Counts Counts `json:"counts"`
	// Hours counts the records delivered by the hour they belong to (its
	// start, UTC): their activityDateTime, or the hour a blob was filed
	// under.
	Hours map[time.Time]int64 `json:"hours,omitempty"`
}

// Resumable reports whether reading can continue inside the unit.
func (u *Unit) Resumable() bool { return u.Line > 0 || u.Offset > 0 }

// File is the whole checkpoint file.
type File struct {
	Version int `json:"version"`
	// Command and Source say what the file is about: "graph" or "blob",
	// and the tenant and endpoint, or the account and container, read.
	Command string           `json:"command"`
	Source  string           `json:"source"`
	Updated time.Time        `json:"updated"`
	Units   map[string]*Unit `json:"units"`
}

// MismatchError is a state file written for another command or source.
type MismatchError struct {
	Path, Command, Source string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("state file %s belongs to 'backfill %s' of %s: use another --state file, or delete it to start over", e.Path, e.Command, e.Source)
}

// Store holds the file in memory and writes it. It is safe for
// concurrent use.
type Store struct {
	path string

	mu    sync.Mutex
	f     File
	dirty bool
	// saving serializes writers; the newest snapshot always wins.
	saving sync.Mutex
	now    func() time.Time
}

// Open loads the file at path, or starts a new one when there is none.
// A file of another command or source is a *MismatchError.
func Open(path, command, source string) (*Store, error) {
	s := &Store{path: path, now: time.Now}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.f = File{Version: Version, Command: command, Source: source, Units: map[string]*Unit{}}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(data, &s.f); err != nil {
		return nil, fmt.Errorf("state file %s: not a backfill state file (%v): delete it to start over", path, err)
	}
	if s.f.Version != Version {
		return nil, fmt.Errorf("state file %s: format version %d, this build reads %d", path, s.f.Version, Version)
	}
	if s.f.Command != command || s.f.Source != source {
		return nil, &MismatchError{Path: path, Command: s.f.Command, Source: s.f.Source}
	}
	if s.f.Units == nil {
		s.f.Units = map[string]*Unit{}
	}
	return s, nil
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Update runs fn on the file under the store's lock and marks it changed.
func (s *Store) Update(fn func(*File)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.f)
	s.dirty = true
}

// View runs fn on the file under the store's lock; fn must not keep or
// change what it sees.
func (s *Store) View(fn func(*File)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.f)
}

// Save writes the file if it changed since the last write.
func (s *Store) Save() error {
	s.saving.Lock()
	defer s.saving.Unlock()
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	s.f.Updated = s.now().UTC()
	data, err := json.Marshal(&s.f)
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := writeAtomic(s.path, data); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	return nil
}

// writeAtomic replaces path with data: a crash leaves the old file or the
// new one.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("state file: write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("state file: sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	ok = true
	// The rename is durable only once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state file: sync %s: %w", dir, err)
	}
	return nil
}

// DefaultPath is where the state of `backfill command` with the config
// file cfgPath is kept when --state is not given: under
// $XDG_STATE_HOME (else ~/.local/state), named after the command and a
// digest of the config file's absolute path and the source read.
func DefaultPath(command, cfgPath, source string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("state file: no --state given and no home directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	abs, err := filepath.Abs(cfgPath)
	if err != nil {
		return "", fmt.Errorf("state file: %w", err)
	}
	return filepath.Join(base, "sspr-exporter", "backfill-"+command+"-"+digest(abs+"\n"+source)+".json"), nil
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
