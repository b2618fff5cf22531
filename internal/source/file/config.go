package file

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config is the [input.file] section.
type Config struct {
	Paths        []string      `toml:"paths"`  // files and globs; "-" = standard input
	Follow       bool          `toml:"follow"` // keep reading files as they grow
	PollInterval time.Duration `toml:"poll_interval"`
}

// DefaultConfig returns the defaults: standard input, polled every second
// when following.
func DefaultConfig() Config {
	return Config{Paths: []string{Stdin}, PollInterval: time.Second}
}

// Validate returns every problem of c, each starting with its key.
func (c Config) Validate() []error {
	var errs []error
	if len(c.Paths) == 0 {
		errs = append(errs, errors.New(`paths: must list at least one file or glob ("-" = standard input)`))
	}
	seen := map[string]int{}
	for i, p := range c.Paths {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, fmt.Errorf("paths[%d]: must not be empty", i))
			continue
		}
		if p != Stdin {
			if _, err := filepath.Match(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("paths[%d]: invalid glob %q: %w", i, p, err))
			}
		}
		if j, dup := seen[p]; dup {
			errs = append(errs, fmt.Errorf("paths[%d]: duplicate of paths[%d]", i, j))
			continue
		}
		seen[p] = i
	}
	if c.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("poll_interval: must be positive (got %s)", c.PollInterval))
	}
	return errs
}
