// Package file writes ECS documents as NDJSON to a file or to standard
// output, with size- and age-based rotation of the file.
package file

import (
	"errors"
	"fmt"
	"time"
)

// Stdout is the path that means standard output instead of a file.
const Stdout = "-"

// Config is the [output.file] section (less its "enabled" key, which the
// config package adds to every output).
type Config struct {
	Path       string        `toml:"path"`        // "-" = standard output
	MaxBytes   int64         `toml:"max_bytes"`   // rotate before a write would exceed this; 0 = never
	MaxAge     time.Duration `toml:"max_age"`     // rotate a file older than this; 0 = never
	MaxBackups int           `toml:"max_backups"` // rotated files kept; 0 = all
}

// DefaultConfig returns the defaults: standard output, no rotation.
func DefaultConfig() Config {
	return Config{Path: Stdout}
}

// Validate returns every problem of c, each starting with its key.
func (c Config) Validate() []error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New(`path: must not be empty (use "-" for standard output)`))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max_bytes: must not be negative (got %d)", c.MaxBytes))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age: must not be negative (got %s)", c.MaxAge))
	}
	if c.MaxBackups < 0 {
		errs = append(errs, fmt.Errorf("max_backups: must not be negative (got %d)", c.MaxBackups))
	}
	// Standard output cannot be renamed, so rotation settings there are a
	// mistake worth reporting rather than ignoring.
	if c.Path == Stdout {
		if c.MaxBytes > 0 {
			errs = append(errs, errors.New(`max_bytes: rotation needs a file path, not "-"`))
		}
		if c.MaxAge > 0 {
			errs = append(errs, errors.New(`max_age: rotation needs a file path, not "-"`))
		}
		if c.MaxBackups > 0 {
			errs = append(errs, errors.New(`max_backups: rotation needs a file path, not "-"`))
		}
	}
	return errs
}
