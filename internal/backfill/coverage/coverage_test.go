package coverage

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill/state"
)

var h0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func hour(i int) time.Time { return h0.Add(time.Duration(i) * time.Hour) }

func blob(tenant string, i int, records int64, done bool) state.Unit {
	u := state.Unit{Tenant: tenant, From: hour(i), To: hour(i + 1), Done: done, Counts: state.Counts{Records: records}}
	if records > 0 {
		u.Hours = map[time.Time]int64{hour(i): records}
	}
	return u
}

// TestHoursGapsPending: hours with records, hours whose input is read and
// empty or absent (gaps), and hours not read yet are told apart per
// tenant, gaps joined into runs.
func TestHoursGapsPending(t *testing.T) {
	in := Input{
		Command: "blob", From: hour(0), To: hour(6), Planned: true, Tenants: []string{"b"},
		Units: []state.Unit{
			blob("a", 0, 5, true),
			blob("a", 1, 0, true), // an empty blob
			// hour 2: no blob at all
			blob("a", 3, 2, false), // partly read, records already delivered
			blob("a", 4, 0, false), // not read yet
			blob("a", 5, 1, true),
		},
	}
	in.Units[0].Counts = state.Counts{Records: 5, SSPR: 2, Dropped: 3, First: hour(0).Add(time.Minute), Last: hour(0).Add(50 * time.Minute)}
	rep := Compute(in)
	if rep.Complete || rep.Units != 5 || rep.UnitsDone != 3 {
		t.Errorf("report %+v: not complete, 3 of 5 done", rep)
	}
	if len(rep.Tenants) != 2 {
		t.Fatalf("tenants %+v", rep.Tenants)
	}
	a := rep.Tenants[0]
	if a.Hours != 6 || a.HoursWithData != 3 || a.HoursWithoutData != 2 || a.HoursPending != 1 {
		t.Errorf("tenant a: %d hours, %d with data, %d without, %d pending", a.Hours, a.HoursWithData, a.HoursWithoutData, a.HoursPending)
	}
	if len(a.Gaps) != 1 || !a.Gaps[0].From.Equal(hour(1)) || !a.Gaps[0].To.Equal(hour(3)) || a.Gaps[0].Hours != 2 {
		t.Errorf("gaps %+v, want hours 1 and 2 as one run", a.Gaps)
	}
	if len(a.Pending) != 1 || !a.Pending[0].From.Equal(hour(4)) {
		t.Errorf("pending %+v", a.Pending)
	}
	if a.Records != 8 || a.SSPRDocuments != 2 || a.FirstEvent == nil || !a.FirstEvent.Equal(hour(0).Add(time.Minute)) {
		t.Errorf("counts %+v", a)
	}
	b := rep.Tenants[1]
	if b.TenantID != "b" || b.HoursWithoutData != 6 || b.FirstEvent != nil {
		t.Errorf("tenant without input: %+v", b)
	}
}

// TestUnplannedHoursArePending: before every unit is known (an archive
// still being listed) an hour without a unit is not a gap.
func TestUnplannedHoursArePending(t *testing.T) {
	rep := Compute(Input{From: hour(0), To: hour(3), Units: []state.Unit{blob("a", 0, 1, true)}})
	a := rep.Tenants[0]
	if a.HoursWithData != 1 || a.HoursWithoutData != 0 || a.HoursPending != 2 || rep.Complete {
		t.Errorf("%+v complete=%v", a, rep.Complete)
	}
}

// TestSlicesAndRecordHours: a Graph slice of a day marks the hours of
// its records; a range starting inside an hour counts that hour.
func TestSlicesAndRecordHours(t *testing.T) {
	from := hour(0).Add(30 * time.Minute)
	u := state.Unit{Tenant: "t", From: from, To: hour(24), Done: true, Hours: map[time.Time]int64{hour(0): 1, hour(7): 4}}
	rep := Compute(Input{From: from, To: hour(24), Units: []state.Unit{u}, Planned: true})
	tr := rep.Tenants[0]
	if tr.Hours != 24 || tr.HoursWithData != 2 || tr.HoursWithoutData != 22 || len(tr.Gaps) != 2 || !rep.Complete {
		t.Errorf("%+v", tr)
	}
}

func TestRender(t *testing.T) {
	rep := Compute(Input{Command: "blob", From: hour(0), To: hour(2), Planned: true, Units: []state.Unit{blob("a", 0, 3, true)}})
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(complete)", "tenant a: 2 hours, 1 with data, 1 without", "gap 2026-11-01T01:00:00Z to 2026-11-01T02:00:00Z (1 h)", "no SSPR event"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Tenants[0].HoursWithData != 1 || back.Tenants[0].Gaps[0].Hours != 1 {
		t.Errorf("JSON %s: %v", js.String(), err)
	}
	if !strings.Contains(js.String(), `"gaps": [`) {
		t.Errorf("gaps not an array: %s", js.String())
	}
}
