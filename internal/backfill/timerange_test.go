package backfill

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		end  bool
		want time.Time
	}{
		{"2026-11-01", false, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-11-30", true, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-11-01T05", false, time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)},
		{"2026-11-01T05:30:00+02:00", false, time.Date(2026, 11, 1, 3, 30, 0, 0, time.UTC)},
		{"2026-11-01T05:30:00", true, time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)},
	} {
		got, err := ParseTime(c.in, c.end)
		if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("%q end=%v: %v %v, want %v", c.in, c.end, got, err, c.want)
		}
	}
	if _, err := ParseTime("yesterday", false); err == nil {
		t.Error("yesterday accepted")
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "2w": 336 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := ParseAge(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0d", "-3d", "x", "5y", "-2h"} {
		if _, err := ParseAge(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestRangeValidate(t *testing.T) {
	r := Range{From: time.Date(2026, 11, 1, 0, 30, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)}
	if r.Validate() != nil {
		t.Error("a range of hours invalid")
	}
	if (Range{From: r.To, To: r.To}).Validate() == nil {
		t.Error("empty range valid")
	}
}
