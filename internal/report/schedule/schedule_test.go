package schedule

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder is a Recorder that keeps what it was told.
type recorder struct {
	mu      sync.Mutex
	runs    map[string]int // "report/result" -> count
	success map[string]time.Time
}

func newRecorder() *recorder {
	return &recorder{runs: map[string]int{}, success: map[string]time.Time{}}
}

func (r *recorder) ReportRun(report, result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[report+"/"+result]++
}

func (r *recorder) ReportSucceeded(report string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.success[report] = at
}

func (r *recorder) get(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[key]
}

var fixedNow = time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)

func start(t *testing.T, jobs []Job, rec Recorder) *Scheduler {
	t.Helper()
	s, err := New(jobs, Options{Recorder: rec, Now: func() time.Time { return fixedNow }, NoCron: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// TestTriggerResults: each way a run ends is reported, counted, and
// (only when delivered) stamped as the last success; a failed report runs
// again at its next tick.
func TestTriggerResults(t *testing.T) {
	tests := []struct {
		name    string
		run     func(context.Context) error
		want    string
		success bool
	}{
		{"delivered", func(context.Context) error { return nil }, ResultOK, true},
		{"failed", func(context.Context) error { return errors.New("smtp: connection refused") }, ResultError, false},
		{"panicked", func(context.Context) error { panic("bug") }, ResultError, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			s := start(t, []Job{{Name: "weekly", Run: tt.run}}, rec)
			for i := 1; i <= 2; i++ {
				res, err := s.Trigger(context.Background(), "weekly")
				if err != nil {
					t.Fatal(err)
				}
				if res.Status != tt.want || (res.Err == nil) != (tt.want == ResultOK) {
					t.Fatalf("run %d: %+v, want %s", i, res, tt.want)
				}
				if got := rec.get("weekly/" + tt.want); got != i {
					t.Errorf("run %d: %s counted %d times", i, tt.want, got)
				}
			}
			if _, ok := rec.success["weekly"]; ok != tt.success || (ok && !rec.success["weekly"].Equal(fixedNow)) {
				t.Errorf("last success %v (set %v), want set %v", rec.success["weekly"], ok, tt.success)
			}
		})
	}
}

// TestOverlappingRunSkipped: a tick while the report still runs is
// skipped and counted, and does not disturb the run under way; another
// report runs meanwhile.
func TestOverlappingRunSkipped(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	rec := newRecorder()
	s := start(t, []Job{
		{Name: "slow", Run: func(context.Context) error { close(started); <-release; return nil }},
		{Name: "other", Run: func(context.Context) error { return nil }},
	}, rec)
	first := make(chan Result, 1)
	go func() {
		r, _ := s.Trigger(context.Background(), "slow")
		first <- r
	}()
	<-started
	if r, err := s.Trigger(context.Background(), "slow"); err != nil || r.Status != ResultSkipped {
		t.Fatalf("second trigger: %+v, %v; want skipped", r, err)
	}
	if r, err := s.Trigger(context.Background(), "other"); err != nil || r.Status != ResultOK {
		t.Fatalf("other report while slow runs: %+v, %v", r, err)
	}
	close(release)
	if r := <-first; r.Status != ResultOK {
		t.Errorf("first run: %+v", r)
	}
	if rec.get("slow/skipped") != 1 || rec.get("slow/ok") != 1 || rec.get("other/ok") != 1 {
		t.Errorf("counts %v", rec.runs)
	}
}

// TestCloseStopsRuns: Close cancels a run under way and waits for it; the
// cancelled run is not counted as a failure of the report.
func TestCloseStopsRuns(t *testing.T) {
	started := make(chan struct{})
	rec := newRecorder()
	var stopped bool
	s := start(t, []Job{{Name: "blocked", Run: func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		stopped = true
		return ctx.Err()
	}}}, rec)
	res := make(chan Result, 1)
	go func() {
		r, _ := s.Trigger(context.Background(), "blocked")
		res <- r
	}()
	<-started
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !stopped {
		t.Error("Close returned before the run ended")
	}
	if r := <-res; r.Status != ResultError {
		t.Errorf("cancelled run: %+v", r)
	}
	if rec.get("blocked/error") != 0 {
		t.Error("a run stopped by Close was counted as a failure")
	}
	if _, err := s.Trigger(context.Background(), "blocked"); err == nil {
		t.Error("Trigger after Close succeeded")
	}
}

func TestTriggerUnknown(t *testing.T) {
	s := start(t, []Job{{Name: "a", Run: func(context.Context) error { return nil }}}, nil)
	if _, err := s.Trigger(context.Background(), "b"); err == nil {
		t.Error("Trigger of an unknown report succeeded")
	}
	if _, err := New([]Job{{Name: "a"}, {Name: "a"}}, Options{}); err == nil {
		t.Error("New accepted two jobs of one name")
	}
}

// soon fires a millisecond after each time it is asked about.
type soon struct{}

func (soon) Next(t time.Time) time.Time { return t.Add(time.Millisecond) }

// TestCronTicksRun: the schedules drive the runs, and a failing report is
// run again at its next tick.
func TestCronTicksRun(t *testing.T) {
	runs := make(chan struct{}, 16)
	rec := newRecorder()
	s, err := New([]Job{{Name: "tick", Schedule: soon{}, Run: func(context.Context) error {
		select {
		case runs <- struct{}{}:
		default:
		}
		return errors.New("destination down")
	}}}, Options{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	// The third run starts only after the second ended and was counted.
	for range 3 {
		select {
		case <-runs:
		case <-time.After(30 * time.Second):
			t.Fatal("the schedule did not run the job")
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.get("tick/error") < 2 {
		t.Errorf("failures counted %d, want at least 2", rec.get("tick/error"))
	}
}
