package backfill

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Range is the half-open interval [From, To) a backfill reads, in UTC.
type Range struct {
	From, To time.Time
}

func (r Range) String() string {
	return r.From.Format(time.RFC3339) + " to " + r.To.Format(time.RFC3339)
}

// Validate checks that the range is not empty.
func (r Range) Validate() error {
	if !r.From.Before(r.To) {
		return fmt.Errorf("the range %s is empty: --from must be before --to", r)
	}
	return nil
}

// ParseTime reads a --from or --to value: an RFC 3339 time (a time without
// zone is UTC), a date and hour (2026-11-01T05), or a date (2026-11-01).
// A date alone means its first instant, or with end set the first instant
// of the next day, so that --to 2026-11-30 includes that whole day.
func ParseTime(s string, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (2026-11-01) or an RFC 3339 time (2026-11-01T05:00:00Z)", s)
}

// ParseAge reads a --since value: a number of days (30d) or weeks (2w),
// or a Go duration (36h, 90m).
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not an age like 30d, 2w or 12h", s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		return days(n, 1, bad)
	}
	if n, ok := strings.CutSuffix(s, "w"); ok {
		return days(n, 7, bad)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	if d <= 0 {
		return 0, errors.New("--since must be positive")
	}
	return d, nil
}

func days(n string, per int, bad error) (time.Duration, error) {
	v, err := strconv.Atoi(n)
	if err != nil {
		return 0, bad
	}
	if v <= 0 || v > 100*366 {
		return 0, fmt.Errorf("--since must be between 1 day and a century (got %s)", n)
	}
	return time.Duration(v*per) * 24 * time.Hour, nil
}
