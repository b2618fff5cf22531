//go:build unix

package file

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCloseWithPendingPipeRead: a named pipe whose writer is idle does not
// hold Close up.
func TestCloseWithPendingPipeRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// A writer that never writes; opening it read-write does not wait for
	// a reader.
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, follow := range []bool{false, true} {
		s, err := openStarted(Options{Paths: []string{path}, Follow: follow})
		if err != nil {
			t.Fatal(err)
		}
		closeWithin(t, s)
	}
}
