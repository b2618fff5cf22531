package elasticsearch

import (
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
)

// ILM deletes an index once its age, counted from the date in its name,
// reaches retention_days: documents backfilled into such an index are
// deleted right after they are acknowledged. The sink says so, at most
// once per log_interval.
func TestWritesPastRetentionAreWarned(t *testing.T) {
	d, cfg := setupDouble(t)
	cfg.ILM.RetentionDays = 400
	cfg.LogInterval = time.Hour // one warning for the whole test
	logs := &syncbuf.Buffer{}
	s := newSink(t, cfg, logs)
	old := time.Now().UTC().AddDate(-2, 0, 0)
	oldIndex := IndexName(cfg.Index.Prefix, cfg.Index.Granularity, old)
	if err := s.Write(tctx(t), events("recent", 5, time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "retention") {
		t.Fatalf("warned about recent documents:\n%s", logs)
	}
	for round := range 3 {
		if err := s.Write(tctx(t), events("old", 4, old.Add(time.Duration(round)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if d.Count(oldIndex) != 4 {
		t.Errorf("the old documents are not stored: %d", d.Count(oldIndex))
	}
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "retention") {
			lines = append(lines, l)
		}
	}
	if st := s.Stats(); st.PastRetention != 12 {
		t.Errorf("PastRetention = %d, want the 12 old documents written", st.PastRetention)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], oldIndex) || !strings.Contains(lines[0], "retention_days=400") || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("want one warning naming %s and the retention, got %d:\n%s", oldIndex, len(lines), strings.Join(lines, "\n"))
	}
}

// The age is counted as ILM does with parse_origination_date: from the
// first day of the bucket in the index name, UTC midnight; the delete phase
// begins when the age reaches retention_days.
func TestPastRetentionBoundary(t *testing.T) {
	cases := []struct {
		gran      string
		retention int
		event     time.Time
		now       time.Time
		past      bool
	}{
		{Month, 30, nov, time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC), false},
		{Month, 30, nov, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), true},
		{Day, 1, nov, time.Date(2026, 11, 14, 23, 59, 59, 0, time.UTC), false},
		{Day, 1, nov, time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC), true},
		{Year, 400, nov, time.Date(2027, 2, 4, 23, 0, 0, 0, time.UTC), false},
		{Year, 400, nov, time.Date(2027, 2, 5, 0, 0, 0, 0, time.UTC), true},
		// A future date (a clock that is wrong somewhere) is never past.
		{Month, 30, nov, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, c := range cases {
		d, cfg := setupDouble(t)
		cfg.Index.Granularity, cfg.ILM.RetentionDays = c.gran, c.retention
		s := newSink(t, cfg, nil)
		s.now = func() time.Time { return c.now }
		if err := s.Write(tctx(t), events("edge", 1, c.event)); err != nil {
			t.Fatal(err)
		}
		if got := s.Stats().PastRetention == 1; got != c.past || d.Count("*") != 1 {
			t.Errorf("%s bucket, %d days, event %v, now %v: past retention %v, want %v", c.gran, c.retention, c.event, c.now, got, c.past)
		}
	}
}
