package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Dir delivers into a local directory (a mounted volume, a share). Each
// file is written to a temporary name beside its final one and renamed,
// so a reader never sees a partial file.
type Dir struct{ Path string }

// Describe names the directory.
func (d Dir) Describe() string { return "dir " + d.Path }

// Deliver copies the report, then the manifest, into the directory.
func (d Dir) Deliver(ctx context.Context, dl Delivery) error {
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		return fmt.Errorf("dir %s: %w", d.Path, err)
	}
	for _, src := range dl.files() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := copyAtomic(src, filepath.Join(d.Path, filepath.Base(src))); err != nil {
			return fmt.Errorf("dir %s: %w", d.Path, err)
		}
	}
	return nil
}

// copyAtomic writes src's content to dst through a temporary file in dst's
// directory (a rename within one file system replaces dst at once).
func copyAtomic(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(dst), err)
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return errors.Join(err, os.Remove(tmp.Name()))
	}
	return nil
}
