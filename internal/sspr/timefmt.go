package sspr

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/entra"
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

var errNotTime = errors.New("not a time in a known layout")

// recordTime is the time of an SSPR record: its activityDateTime, else its
// createdDateTime, else the record time. The error says, for each of them
// that is given, why it cannot be used.
func recordTime(r *entra.Record) (time.Time, error) {
	e := r.Entry()
	var why []string
	for _, f := range []struct {
		name  string
		value entra.Text
	}{{"activityDateTime", e.ActivityDateTime}, {"createdDateTime", e.CreatedDateTime}, {"time", r.Time}} {
		if strings.TrimSpace(string(f.value)) == "" {
			continue
		}
		t, err := parseTime(string(f.value))
		if err == nil {
			return t, nil
		}
		why = append(why, fmt.Sprintf("%s %q: %v", f.name, f.value, err))
	}
	if why == nil {
		return time.Time{}, fmt.Errorf("%w: none given", ErrNoTime)
	}
	return time.Time{}, fmt.Errorf("%w: %s", ErrNoTime, strings.Join(why, "; "))
}

// parseTime parses a record time into UTC. It refuses what Go's parser
// takes but no clock shows (UTC offsets of 24 hours or more, or 60 minutes
// or more; hour 0 on a 12-hour clock) and times whose year in UTC is not
// 0000-9999, which neither the document schema nor the index names hold.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) < 8 {
		return time.Time{}, errNotTime
	}
	// ISO dates written with a space between date and time.
	if len(s) > 10 && s[4] == '-' && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	t, layout, err := parseLayouts(s)
	if err != nil {
		return time.Time{}, err
	}
	if strings.HasSuffix(layout, "Z07:00") || strings.HasSuffix(layout, "Z0700") {
		if err := checkOffset(s); err != nil {
			return time.Time{}, err
		}
	}
	if strings.Contains(layout, "PM") {
		if err := checkHour12(s); err != nil {
			return time.Time{}, err
		}
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("year %d in UTC is outside 0000-9999", y)
	}
	return t, nil
}

// parseLayouts tries the layouts in turn and returns the time in UTC and
// the layout that took it.
func parseLayouts(s string) (time.Time, string, error) {
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), l, nil
		}
	}
	for _, l := range localLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, l, nil
		}
	}
	return time.Time{}, "", errNotTime
}

// checkOffset checks the UTC offset that ends s (±hh:mm or ±hhmm, or Z),
// which the layout has already checked to be digits.
func checkOffset(s string) error {
	n := len(s)
	var zone, hh, mm string
	switch {
	case n >= 6 && (s[n-6] == '+' || s[n-6] == '-') && s[n-3] == ':':
		zone, hh, mm = s[n-6:], s[n-5:n-3], s[n-2:]
	case n >= 5 && (s[n-5] == '+' || s[n-5] == '-'):
		zone, hh, mm = s[n-5:], s[n-4:n-2], s[n-2:]
	default:
		return nil
	}
	if hh > "23" || mm > "59" {
		return fmt.Errorf("UTC offset %s is out of range (at most ±23:59)", zone)
	}
	return nil
}

// checkHour12 checks the hour of a US date with an AM/PM clock, which the
// layout has already checked to be at most 12.
func checkHour12(s string) error {
	_, clock, _ := strings.Cut(s, " ")
	hour, _, _ := strings.Cut(strings.TrimLeft(clock, " "), ":")
	if strings.Trim(hour, "0") == "" {
		return errors.New("hour 0 on a 12-hour clock")
	}
	return nil
}

// formatTime writes t as RFC 3339 in UTC with a Z and the fraction without
// trailing zeros (".5Z", ".9999999Z", none for whole seconds).
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
}
