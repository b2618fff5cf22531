package sspr_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

// withTimes returns an SSPR record of the bundled archive with its
// activityDateTime and time set (an empty string removes the field).
func withTimes(t *testing.T, activity, recTime string) []byte {
	t.Helper()
	line, _, _ := bytes.Cut(readFile(t, filepath.Join(testdata.Project(t), "sspr", "storage-archive-PT1H.json")), []byte{'\n'})
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatal(err)
	}
	props := rec["properties"].(map[string]any)
	for _, f := range []struct {
		m     map[string]any
		key   string
		value string
	}{{props, "activityDateTime", activity}, {rec, "time", recTime}} {
		if f.value == "" {
			delete(f.m, f.key)
		} else {
			f.m[f.key] = f.value
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnusableTimesDeadLettered: a time that would make a document the
// schema refuses, or an index name ILM cannot read, dead-letters the
// record at normalize with a reason that names the time and why.
func TestUnusableTimesDeadLettered(t *testing.T) {
	for _, tc := range []struct {
		activity, recTime string
		reasons           []string
	}{
		{"9999-12-31T23:59:59-01:00", "", []string{`activityDateTime "9999-12-31T23:59:59-01:00"`, "year 10000 in UTC is outside 0000-9999"}},
		{"0000-01-01T00:00:00+01:00", "", []string{`"0000-01-01T00:00:00+01:00"`, "year -1 in UTC"}},
		{"12/31/9999 11:30:00 PM -01:00", "", []string{"year 10000"}},
		{"2026-01-01T00:00:00+24:00", "", []string{"UTC offset +24:00 is out of range"}},
		{"2026-01-01T00:00:00+09:60", "", []string{"UTC offset +09:60 is out of range"}},
		{"1/2/2026 0:04:05 AM", "", []string{"hour 0 on a 12-hour clock"}},
		{"10000-01-01T00:00:00Z", "-0001-12-31T00:00:00Z", []string{`activityDateTime "10000-01-01T00:00:00Z": not a time`, `time "-0001-12-31T00:00:00Z": not a time`}},
		{"", "", []string{"none given"}},
	} {
		res := decode(t, input{name: "times", data: withTimes(t, tc.activity, tc.recTime)})
		if len(res.Docs) != 0 || len(res.DeadLetters) != 1 {
			t.Errorf("%q/%q: %d documents, %d dead letters; want one dead letter", tc.activity, tc.recTime, len(res.Docs), len(res.DeadLetters))
			continue
		}
		dl := res.DeadLetters[0]
		if dl.Stage != deadletter.StageNormalize || !strings.Contains(dl.Error, sspr.ErrNoTime.Error()) {
			t.Errorf("%q: stage %s, error %q", tc.activity, dl.Stage, dl.Error)
		}
		for _, r := range tc.reasons {
			if !strings.Contains(dl.Error, r) {
				t.Errorf("%q/%q: error %q does not say %q", tc.activity, tc.recTime, dl.Error, r)
			}
		}
	}
}

// TestEdgeTimesMakeValidDocuments: the earliest and latest usable times,
// and a bad activityDateTime with a good record time, give documents the
// schema accepts, dated in a year the index names (-yyyy.MM.dd, for ILM's
// parse_origination_date) can hold.
func TestEdgeTimesMakeValidDocuments(t *testing.T) {
	sch := eventSchema(t)
	year := regexp.MustCompile(`^[0-9]{4}-`)
	for _, tc := range []struct{ activity, recTime, want string }{
		{"0000-01-01T00:00:00Z", "", "0000-01-01T00:00:00Z"},
		{"0000-01-01T01:00:00+01:00", "", "0000-01-01T00:00:00Z"},
		{"9999-12-31T23:59:59.999999999Z", "", "9999-12-31T23:59:59.999999999Z"},
		{"12/31/9999 11:59:59 PM", "", "9999-12-31T23:59:59Z"},
		{"2026-01-01T00:00:00+24:00", "2026-11-02T08:00:08Z", "2026-11-02T08:00:08Z"},
	} {
		res := decode(t, input{name: "times", data: withTimes(t, tc.activity, tc.recTime)})
		if len(res.Docs) != 1 {
			t.Errorf("%q: %d documents, dead letters %+v", tc.activity, len(res.Docs), res.DeadLetters)
			continue
		}
		d := res.Docs[0]
		if d.Timestamp != tc.want {
			t.Errorf("%q: @timestamp %s, want %s", tc.activity, d.Timestamp, tc.want)
		}
		b, _ := docJSON(t, d)
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%q: %v", tc.activity, err)
		}
		if y := d.Time.UTC().Year(); y < 0 || y > 9999 || !year.MatchString(d.Timestamp) {
			t.Errorf("%q: year %d", tc.activity, y)
		}
	}
}
