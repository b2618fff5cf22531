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
