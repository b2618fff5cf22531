package file

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// BackupLayout is the time layout of the suffix of rotated files:
// NAME.2026-11-25T10-00-00.000, in UTC. It sorts lexically in time order and
// avoids ':' so the names are valid on every file system.
const BackupLayout = "2006-01-02T15-04-05.000"

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("file writer closed")

const bufferSize = 256 << 10

// Options configures a Writer.
type Options struct {
	Path       string        // file appended to; "-" writes to Std
	MaxBytes   int64         // rotate before a line would make the file exceed this; 0 = never
	MaxAge     time.Duration // rotate before writing to a file older than this; 0 = never
	MaxBackups int           // rotated files kept; 0 = all
	Std        io.Writer     // destination for "-"; os.Stdout when nil
	Now        func() time.Time
	Logger     *slog.Logger
}

// Writer appends newline-terminated lines to a file, buffered, rotating it by
// size and age, or to a standard stream. It is safe for concurrent use; each
// call's lines stay together and in order.
type Writer struct {
	opt    Options
	now    func() time.Time
	logger *slog.Logger

	mu      sync.Mutex
	out     io.Writer // f, or the standard stream
	f       *os.File  // nil when writing to a standard stream
	bw      *bufio.Writer
	fsync   func() error // nil when the destination cannot be synced
	size    int64        // bytes in the current file, buffered ones included
	durable int64        // bytes flushed and synced
	started time.Time    // when the current file began, for MaxAge
	stamp   time.Time    // last backup name used, to keep names unique
	broken  bool         // a write failed; reopen before the next one
	closed  bool
}

// OpenWriter opens (creating or appending to) the destination of o.
func OpenWriter(o Options) (*Writer, error) {
	if o.Path == "" {
		return nil, errors.New("file writer: empty path")
	}
	w := &Writer{opt: o, now: o.Now, logger: o.Logger}
	if w.now == nil {
		w.now = time.Now
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if o.Path == Stdout {
		std := o.Std
		if std == nil {
			std = os.Stdout
		}
		w.out = std
		w.bw = bufio.NewWriterSize(std, bufferSize)
		// Standard output redirected to a regular file is synced like any
		// file; pipes and terminals cannot be (fsync fails with EINVAL).
		if f, ok := std.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				w.fsync = f.Sync
			}
		}
		return w, nil
	}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// open opens the file at the configured path for appending. Called with mu
// held (or before w is shared).
func (w *Writer) open() error {
	f, err := os.OpenFile(w.opt.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("file writer: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("file writer: %w", err)
	}
	w.f, w.out = f, f
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, bufferSize)
	} else {
		w.bw.Reset(f)
	}
	w.fsync = nil
	size := st.Size()
	if st.Mode().IsRegular() {
		w.fsync = f.Sync
		// A crash can leave half a line at the end: it was never
		// acknowledged, so it will be written again; cut it off so the
		// next line starts on a line of its own.
		if size, err = cutTornLine(w.opt.Path, size); err != nil {
			_ = f.Close()
			return fmt.Errorf("file writer: %w", err)
		}
	}
	w.size, w.durable = size, size
	w.started = w.now()
	if st.Size() > 0 {
		w.started = w.existingStart(st.ModTime())
	}
	w.broken = false
	return nil
}

// existingStart estimates when a non-empty file found at open began: a
// rotation renames the old file and starts this one at the moment named in
// the newest backup; without a backup the modification time is the best
// bound available.
func (w *Writer) existingStart(mtime time.Time) time.Time {
	backups, err := w.backups()
	if err != nil || len(backups) == 0 {
		return mtime
	}
	newest := backups[len(backups)-1]
	if newest.t.After(mtime) {
		return mtime
	}
	return newest.t
}

// WriteLines writes lines (each ending in '\n') as one unit, then flushes
// and, for regular files, fsyncs. It returns nil only when every line is
// durable. Rotation happens before the unit when the file is too old, and
// before any line that would make the file exceed MaxBytes; a line larger
// than MaxBytes goes alone into a file.
func (w *Writer) WriteLines(lines ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writeLocked(lines); err != nil {
		return err
	}
	return w.syncLocked()
}

// Write writes p, which holds whole lines, as one unit and flushes it to the
// operating system; call Sync to make it durable. It makes the Writer an
// io.Writer for line encoders such as the dead-letter writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writeLocked([][]byte{p}); err != nil {
		return 0, err
	}
	if err := w.bw.Flush(); err != nil {
		w.fail()
		return 0, fmt.Errorf("file writer flush: %w", err)
	}
	return len(p), nil
}

// Sync flushes buffered lines and fsyncs the file.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.broken {
		return errors.New("file writer: previous write failed")
	}
	return w.syncLocked()
}

// Close flushes, syncs and closes the file (a standard stream is flushed and
// left open). Further writes return ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if !w.broken {
		err = w.syncLocked()
	}
	if w.f != nil {
		if cerr := w.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("file writer close: %w", cerr)
		}
		w.f = nil
	}
	return err
}

func (w *Writer) writeLocked(lines [][]byte) error {
	if w.closed {
		return ErrClosed
	}
	if w.broken {
		if w.opt.Path == Stdout {
			w.broken = false
		} else if err := w.open(); err != nil {
			return err
		}
	}
	if w.f != nil && w.opt.MaxAge > 0 {
		switch {
		case w.size == 0:
			// A file's age counts from its first line, so an idle empty
			// file is not rotated right after it is first written.
			w.started = w.now()
		case w.now().Sub(w.started) >= w.opt.MaxAge:
			if err := w.rotate(); err != nil {
				return err
			}
		}
	}
	for _, l := range lines {
		n := int64(len(l))
		if w.f != nil && w.opt.MaxBytes > 0 && w.size > 0 && w.size+n > w.opt.MaxBytes {
			if err := w.rotate(); err != nil {
				return err
			}
		}
		if _, err := w.bw.Write(l); err != nil {
			w.fail()
			return fmt.Errorf("file writer: %w", err)
		}
		w.size += n
	}
	return nil
}

func (w *Writer) syncLocked() error {
	if err := w.bw.Flush(); err != nil {
		w.fail()
		return fmt.Errorf("file writer flush: %w", err)
	}
	if w.fsync != nil {
		if err := w.fsync(); err != nil {
			w.fail()
			return fmt.Errorf("file writer fsync: %w", err)
		}
	}
	w.durable = w.size
	return nil
}

// fail drops what is buffered and cuts the file back to its last durable
// size, so a retry of the failed unit does not follow a torn line. The next
// write reopens the file.
func (w *Writer) fail() {
	w.broken = true
	if w.f == nil {
		w.bw.Reset(w.out)
		w.size = w.durable
		return
	}
	w.bw.Reset(w.f)
	if err := w.f.Truncate(w.durable); err != nil {
		w.logger.Warn("file writer: cannot cut back a partly written file", "path", w.opt.Path, "error", err)
	}
	_ = w.f.Close()
	w.f = nil
	w.size = w.durable
}

// rotate makes the current file durable, renames it to its backup name,
// starts a new file and prunes old backups.
func (w *Writer) rotate() error {
	if err := w.syncLocked(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		w.f = nil
		w.broken = true
		return fmt.Errorf("file writer close for rotation: %w", err)
	}
	w.f = nil
	backup, err := w.backupName()
	if err != nil {
		w.broken = true
		return err
	}
	if err := os.Rename(w.opt.Path, backup); err != nil {
		w.broken = true
		return fmt.Errorf("file writer rotate: %w", err)
	}
	if err := w.open(); err != nil {
		w.broken = true
		return err
	}
	// The rename must survive a crash too, or the durable lines of the old
	// file could reappear under the current name after a replay.
	if err := syncDir(filepath.Dir(w.opt.Path)); err != nil {
		w.logger.Warn("file writer: cannot sync directory after rotation", "path", w.opt.Path, "error", err)
	}
	w.logger.Info("rotated output file", "path", w.opt.Path, "backup", backup)
	w.prune()
	return nil
}

// backupName returns a name for the current file that no other backup has:
// the rotation time in milliseconds, moved forward past earlier names.
func (w *Writer) backupName() (string, error) {
	t := w.now().UTC().Truncate(time.Millisecond)
	if !t.After(w.stamp) {
		t = w.stamp.Add(time.Millisecond)
	}
	for range 1000 {
		name := w.opt.Path + "." + t.Format(BackupLayout)
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			w.stamp = t
			return name, nil
		} else if err != nil {
			return "", fmt.Errorf("file writer rotate: %w", err)
		}
		t = t.Add(time.Millisecond)
	}
	return "", fmt.Errorf("file writer rotate: no free backup name for %s", w.opt.Path)
}

type backup struct {
	path string
	t    time.Time
}

// backups lists the rotated files of the current path, oldest first. Only
// names whose suffix parses as a backup time count, so unrelated files that
// share the prefix are never pruned.
func (w *Writer) backups() ([]backup, error) {
	dir, base := filepath.Split(w.opt.Path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("file writer list backups: %w", err)
	}
	var out []backup
	for _, e := range entries {
		name := e.Name()
		suffix, ok := strings.CutPrefix(name, base+".")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		t, err := time.Parse(BackupLayout, suffix)
		if err != nil || t.Format(BackupLayout) != suffix {
			continue
		}
		out = append(out, backup{path: filepath.Join(dir, name), t: t})
	}
	slices.SortFunc(out, func(a, b backup) int { return a.t.Compare(b.t) })
	return out, nil
}

// prune removes the oldest backups beyond MaxBackups. Failures are logged,
// not returned: the lines just written are durable either way.
func (w *Writer) prune() {
	if w.opt.MaxBackups <= 0 {
		return
	}
	list, err := w.backups()
	if err != nil {
		w.logger.Warn("file writer: cannot prune backups", "path", w.opt.Path, "error", err)
		return
	}
	for len(list) > w.opt.MaxBackups {
		if err := os.Remove(list[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.logger.Warn("file writer: cannot remove old backup", "backup", list[0].path, "error", err)
		} else {
			w.logger.Debug("removed old output file", "backup", list[0].path)
		}
		list = list[1:]
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// cutTornLine truncates the file at path after its last newline when it
// does not end with one, and returns the new size.
func cutTornLine(path string, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return size, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return size, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return size, nil
	}
	if err := f.Truncate(end); err != nil {
		return size, err
	}
	return end, f.Sync()
}
