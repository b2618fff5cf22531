package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
)

func TestBar(t *testing.T) {
	s := Snapshot{Noun: "slices", UnitsDone: 12, UnitsTotal: 30, Planned: true, WorkDone: 12, WorkTotal: 30, WorkAtStart: 2,
		Records: 123400, Events: 2500, Elapsed: 100 * time.Second}
	got := Bar(s, 100)
	// 40% of the 40 columns left for the bar; 10 slices done in this run in
	// 100 s, 18 to go.
	want := "[================>                       ] 12/30 slices  40%  1,234 records/s  25 events/s  ETA 3m0s"
	if got != want {
		t.Errorf("bar\n%q, want\n%q", got, want)
	}
	if len(got) > 100 {
		t.Errorf("%d columns, want at most 100", len(got))
	}
	s.Planned = false
	if got := Bar(s, 100); !strings.Contains(got, "12/? slices") || !strings.Contains(got, "ETA --") || !strings.Contains(got, "?%") {
		t.Errorf("unplanned: %q", got)
	}
	if got := Bar(s, 20); len(got) > 20 {
		t.Errorf("narrow: %q", got)
	}
	done := Snapshot{Noun: "blobs", UnitsDone: 3, UnitsTotal: 3, Planned: true, WorkDone: 300, WorkTotal: 300, Elapsed: time.Second}
	if got := Bar(done, 80); !strings.HasPrefix(got, "[====") || strings.Contains(got, ">") || !strings.Contains(got, "100%") {
		t.Errorf("finished: %q", got)
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := group(n); got != want {
			t.Errorf("%d: %q", n, got)
		}
	}
}

// TestLogLinesWhenNotATerminal: a buffer is not a terminal: progress goes
// to the log, at the interval and once at the end, and nothing is
// written to the stream itself.
func TestLogLinesWhenNotATerminal(t *testing.T) {
	var out bytes.Buffer
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	n := int64(0)
	d := Start(Options{Mode: ModeAuto, W: &out, Logger: logger, Interval: 20 * time.Millisecond}, func() Snapshot {
		n++
		return Snapshot{Noun: "blobs", UnitsDone: n, UnitsTotal: 10, Planned: true, Records: 100, Elapsed: time.Second}
	})
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "backfill progress") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	d.Stop()
	if out.Len() != 0 {
		t.Errorf("wrote %q to a non-terminal", out.String())
	}
	s := logs.String()
	if strings.Count(s, `"msg":"backfill progress"`) < 2 || !strings.Contains(s, `"msg":"backfill finished reading"`) || !strings.Contains(s, `"records_per_second":100`) {
		t.Errorf("log:\n%s", s)
	}
	if IsTerminal(&out) {
		t.Error("a buffer is a terminal")
	}
}

// TestBarMode: the bar is redrawn in place and ends with a new line.
func TestBarMode(t *testing.T) {
	var out syncbuf.Buffer
	d := Start(Options{Mode: ModeBar, W: &out, Width: 80}, func() Snapshot {
		return Snapshot{Noun: "blobs", UnitsTotal: 1, Planned: true}
	})
	d.Stop()
	s := out.String()
	if !strings.HasPrefix(s, "\r[") || !strings.HasSuffix(s, "\x1b[K\n") {
		t.Errorf("%q", s)
	}
}
