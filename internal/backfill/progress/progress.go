// Package progress shows how far a backfill is: a bar redrawn in place
// when standard error is a terminal (units done, records and events per
// second, time left), a log line at an interval otherwise.
package progress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Snapshot is the state of a backfill at one moment.
type Snapshot struct {
	Noun       string // what the units are: "slices", "blobs"
	UnitsDone  int64
	UnitsTotal int64
	// Planned is set once UnitsTotal is final (an archive is still being
	// listed before).
	Planned bool
	// Work counts what the time left is estimated from: bytes when the
	// units' sizes are known, else units. WorkAtStart is what was already
	// done by earlier runs.
	WorkDone, WorkTotal, WorkAtStart int64
	Records                          int64 // audit records read and acknowledged in this run
	Events                           int64 // SSPR documents delivered in this run
	Elapsed                          time.Duration
}

// rate is n per second over the elapsed time.
func (s Snapshot) rate(n int64) float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(n) / s.Elapsed.Seconds()
}

// ETA estimates the time left from the work done in this run; false
// when it cannot be told yet.
func (s Snapshot) ETA() (time.Duration, bool) {
	done := s.WorkDone - s.WorkAtStart
	if !s.Planned || done <= 0 || s.Elapsed <= 0 || s.WorkTotal < s.WorkDone {
		return 0, false
	}
	left := float64(s.WorkTotal-s.WorkDone) * s.Elapsed.Seconds() / float64(done)
	return time.Duration(left * float64(time.Second)).Round(time.Second), true
}

// Bar renders the snapshot as one terminal line of at most width columns:
//
//	[=========>          ] 12/30 slices  40%  1,234 records/s  25 events/s  ETA 1m20s
func Bar(s Snapshot, width int) string {
	total := "?"
	if s.Planned {
		total = group(s.UnitsTotal)
	}
	frac := 0.0
	if s.Planned && s.WorkTotal > 0 {
		frac = min(1, float64(s.WorkDone)/float64(s.WorkTotal))
	}
	eta := "ETA --"
	if d, ok := s.ETA(); ok {
		eta = "ETA " + d.String()
	}
	pct := "  ?%"
	if s.Planned {
		pct = fmt.Sprintf("%3.0f%%", 100*frac)
	}
	tail := fmt.Sprintf(" %s/%s %s %s  %s records/s  %s events/s  %s",
		group(s.UnitsDone), total, s.Noun, pct, group(int64(s.rate(s.Records))), group(int64(s.rate(s.Events))), eta)
	barWidth := width - len(tail) - 2
	if barWidth < 10 {
		return strings.TrimSpace(tail)[:min(len(strings.TrimSpace(tail)), max(width, 0))]
	}
	fill := int(frac * float64(barWidth))
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(strings.Repeat("=", fill))
	if fill < barWidth {
		b.WriteByte('>')
		b.WriteString(strings.Repeat(" ", barWidth-fill-1))
	}
	b.WriteByte(']')
	b.WriteString(tail)
	return b.String()
}

// group writes n with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Attrs are the snapshot as log attributes.
func Attrs(s Snapshot) []any {
	attrs := []any{
		"units", s.Noun, "done", s.UnitsDone, "total", s.UnitsTotal, "planned", s.Planned,
		"records", s.Records, "events", s.Events,
		"records_per_second", int64(s.rate(s.Records)), "events_per_second", int64(s.rate(s.Events)),
	}
	if d, ok := s.ETA(); ok {
		attrs = append(attrs, "eta", d.String())
	}
	return attrs
}

// Modes of a Display.
const (
	ModeAuto = "auto" // a bar on a terminal, log lines otherwise
	ModeBar  = "bar"
	ModeLog  = "log"
	ModeOff  = "off"
)

// Modes lists the modes.
var Modes = []string{ModeAuto, ModeBar, ModeLog, ModeOff}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Display shows snapshots until stopped.
type Display struct {
	mode     string
	w        io.Writer
	logger   *slog.Logger
	interval time.Duration
	width    int
	snap     func() Snapshot

	stop chan struct{}
	wg   sync.WaitGroup
}

// Options configure a Display.
type Options struct {
	Mode     string // a Mode; auto picks bar when W is a terminal
	W        io.Writer
	Logger   *slog.Logger
	Interval time.Duration // between log lines (bars are redrawn four times a second)
	Width    int           // of the bar; 0 is 100
}

// Start shows snap's snapshots until Stop.
func Start(o Options, snap func() Snapshot) *Display {
	mode := o.Mode
	if mode == ModeAuto || mode == "" {
		mode = ModeLog
		if IsTerminal(o.W) {
			mode = ModeBar
		}
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Width <= 0 {
		o.Width = 100
	}
	d := &Display{mode: mode, w: o.W, logger: o.Logger, interval: o.Interval, width: o.Width, snap: snap, stop: make(chan struct{})}
	if mode == ModeOff || (mode == ModeLog && d.logger == nil) {
		return d
	}
	d.wg.Add(1)
	go d.run()
	return d
}

func (d *Display) run() {
	defer d.wg.Done()
	every := d.interval
	if d.mode == ModeBar {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			d.show(true)
			return
		case <-t.C:
			d.show(false)
		}
	}
}

func (d *Display) show(last bool) {
	s := d.snap()
	switch d.mode {
	case ModeBar:
		line := "\r" + Bar(s, d.width) + "\x1b[K"
		if last {
			line += "\n"
		}
		_, _ = io.WriteString(d.w, line)
	case ModeLog:
		msg := "backfill progress"
		if last {
			msg = "backfill finished reading"
		}
		d.logger.Log(context.Background(), slog.LevelInfo, msg, Attrs(s)...)
	}
}

// Stop shows the last snapshot and stops.
func (d *Display) Stop() {
	select {
	case <-d.stop:
		return
	default:
		close(d.stop)
	}
	d.wg.Wait()
}
