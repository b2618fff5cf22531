package sspr

import (
	"strings"
	"time"
)

// Layouts seen in Entra records: RFC 3339 with 0–9 fraction digits, the same
// with a space instead of 'T' and no zone (Log Analytics exports), and US
// month/day/year with 24-hour or AM/PM clocks, with or without an offset.
// A value without a zone is UTC.
var zonedLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"1/2/2006 15:04:05 Z07:00",
	"1/2/2006 3:04:05 PM Z07:00",
}

var localLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"1/2/2006 15:04:05",
	"1/2/2006 3:04:05 PM",
}

// parseTime parses a record time; false when it is empty or not a time.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 8 {
		return time.Time{}, false
	}
	// ISO dates written with a space between date and time.
	if len(s) > 10 && s[4] == '-' && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	for _, l := range localLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// formatTime writes t as RFC 3339 in UTC with a Z and the fraction without
// trailing zeros (".5Z", ".9999999Z", none for whole seconds).
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
}
