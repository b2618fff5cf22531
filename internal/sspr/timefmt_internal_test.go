package sspr

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/schema"
)

// timestampPattern is the schema's pattern for @timestamp.
func timestampPattern(t testing.TB) *regexp.Regexp {
	t.Helper()
	var s struct {
		Properties map[string]struct {
			Pattern string `json:"pattern"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(schema.ECSEvent, &s); err != nil {
		t.Fatal(err)
	}
	p := s.Properties["@timestamp"].Pattern
	if p == "" {
		t.Fatal("schema has no @timestamp pattern")
	}
	return regexp.MustCompile(p)
}

var parseTimeCases = []struct {
	in   string
	want string // formatted time, or "!reason" for a rejection
}{
	{"2026-11-02T08:00:08.3103016Z", "2026-11-02T08:00:08.3103016Z"},
	{"2026-11-02T08:00:08.3103016+00:00", "2026-11-02T08:00:08.3103016Z"},
	{"2026-11-02 08:00:08", "2026-11-02T08:00:08Z"},
	{"1/9/2007 10:41:00 AM +01:00", "2007-01-09T09:41:00Z"},
	{"01/09/2007 12:41:00 AM", "2007-01-09T00:41:00Z"},
	{"2026-01-01T00:00:00+23:59", "2025-12-31T00:01:00Z"},
	{"2026-01-01T00:00:00-0000", "2026-01-01T00:00:00Z"},
	{"0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"},
	{"9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"},
	{"0000-01-01T01:00:00+01:00", "0000-01-01T00:00:00Z"},

	// Years outside 0000-9999 once in UTC.
	{"10000-01-01T00:00:00Z", "!not a time"},
	{"-0001-12-31T00:00:00Z", "!not a time"},
	{"0000-01-01T00:00:00+01:00", "!year -1 in UTC is outside 0000-9999"},
	{"9999-12-31T23:59:59-01:00", "!year 10000 in UTC is outside 0000-9999"},
	{"12/31/9999 11:30:00 PM -01:00", "!year 10000 in UTC is outside 0000-9999"},
	{"1/1/0000 00:30:00 +01:00", "!year -1 in UTC is outside 0000-9999"},
	{"1/1/0000 12:30:00 AM +01:00", "!year -1 in UTC is outside 0000-9999"},
	// UTC offsets of 24 hours or more, or 60 minutes or more.
	{"2026-01-01T00:00:00+24:00", "!UTC offset +24:00 is out of range"},
	{"2026-01-01T00:00:00-24:00", "!UTC offset -24:00 is out of range"},
	{"2026-01-01T00:00:00+23:60", "!UTC offset +23:60 is out of range"},
	{"2026-01-01T00:00:00+00:60", "!UTC offset +00:60 is out of range"},
	{"2026-01-01T00:00:00+2400", "!UTC offset +2400 is out of range"},
	{"2026-01-01T00:00:00.5+0960", "!UTC offset +0960 is out of range"},
	{"1/2/2026 15:04:05 +24:00", "!UTC offset +24:00 is out of range"},
	// Hour 0 on a 12-hour clock.
	{"1/2/2026 0:04:05 AM", "!hour 0 on a 12-hour clock"},
	{"1/2/2026 00:04:05 PM +01:00", "!hour 0 on a 12-hour clock"},
	// Not times at all.
	{"", "!not a time"},
	{"yesterday", "!not a time"},
	{"2026-02-30T00:00:00Z", "!not a time"},
}

func TestParseTime(t *testing.T) {
	pat := timestampPattern(t)
	for _, tc := range parseTimeCases {
		ts, err := parseTime(tc.in)
		if reason, reject := strings.CutPrefix(tc.want, "!"); reject {
			if err == nil || !strings.Contains(err.Error(), reason) {
				t.Errorf("parseTime(%q) = %v, %v; want an error saying %q", tc.in, ts, err, reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseTime(%q): %v", tc.in, err)
			continue
		}
		if got := formatTime(ts); got != tc.want || !pat.MatchString(got) {
			t.Errorf("parseTime(%q) formats as %q, want %q (schema pattern matches: %v)", tc.in, got, tc.want, pat.MatchString(got))
		}
	}
}

// offsetAtEnd matches a UTC offset ending a time string.
var offsetAtEnd = regexp.MustCompile(`[+-]([0-9]{2}):?([0-9]{2})$`)

// clock12 matches the hour of a 12-hour clock time.
var clock12 = regexp.MustCompile(` +([0-9]{1,2}):[0-9]{2}:[0-9]{2}(\.[0-9]+)? +[AP]M\b`)

// FuzzParseTime: whatever parseTime accepts formats as the schema wants,
// lies within 0000-9999, had an offset within ±23:59 and a 12-hour clock
// hour within 1-12, and parses back to the same instant.
//
//	go test -run='^$' -fuzz=FuzzParseTime -fuzztime=30s ./internal/sspr
func FuzzParseTime(f *testing.F) {
	for _, tc := range parseTimeCases {
		f.Add(tc.in)
	}
	pat := timestampPattern(f)
	f.Fuzz(func(t *testing.T, in string) {
		ts, err := parseTime(in)
		if err != nil {
			return
		}
		out := formatTime(ts)
		if !pat.MatchString(out) || ts.Year() < 0 || ts.Year() > 9999 {
			t.Fatalf("parseTime(%q) gives %q, which the schema refuses", in, out)
		}
		if m := offsetAtEnd.FindStringSubmatch(strings.TrimSpace(in)); m != nil && strings.ContainsAny(in, "T:") {
			if h, _ := strconv.Atoi(m[1]); h > 23 {
				t.Fatalf("parseTime(%q) took offset hours %s", in, m[1])
			}
			if mm, _ := strconv.Atoi(m[2]); mm > 59 {
				t.Fatalf("parseTime(%q) took offset minutes %s", in, m[2])
			}
		}
		if m := clock12.FindStringSubmatch(in); m != nil {
			if h, _ := strconv.Atoi(m[1]); h < 1 || h > 12 {
				t.Fatalf("parseTime(%q) took hour %s on a 12-hour clock", in, m[1])
			}
		}
		back, err := parseTime(out)
		if err != nil || !back.Equal(ts) {
			t.Fatalf("parseTime(%q) = %s, which parses back as %v, %v", in, out, back, err)
		}
		if ts.Location() != time.UTC {
			t.Fatalf("parseTime(%q) is not in UTC", in)
		}
	})
}
