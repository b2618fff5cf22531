package retry

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestBackoffGrowsWithinJitterAndCap(t *testing.T) {
	c := Config{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	b := c.Backoff()
	interval := c.InitialBackoff
	for i := range 20 {
		d := b.Next()
		lo := time.Duration(float64(interval) * (1 - Jitter))
		hi := time.Duration(float64(interval)*(1+Jitter)) + 1
		if d < lo || d > hi {
			t.Fatalf("attempt %d: delay %v outside [%v, %v]", i, d, lo, hi)
		}
		interval = min(2*interval, c.MaxBackoff)
	}
	b.Reset()
	if d := b.Next(); d > time.Duration(float64(c.InitialBackoff)*(1+Jitter))+1 {
		t.Errorf("after Reset: delay %v, want about the initial %v", d, c.InitialBackoff)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		c    Config
		want []string
	}{
		{Config{InitialBackoff: time.Second, MaxBackoff: time.Second}, nil},
		{Config{}, []string{"initial_backoff:"}},
		{Config{InitialBackoff: 2 * time.Second, MaxBackoff: time.Second}, []string{"max_backoff:"}},
	}
	for _, c := range cases {
		errs := c.c.Validate()
		if len(errs) != len(c.want) {
			t.Errorf("%+v: got %v, want %v", c.c, errs, c.want)
			continue
		}
		for i, e := range errs {
			if !strings.HasPrefix(e.Error(), c.want[i]) {
				t.Errorf("%+v: got %q, want prefix %q", c.c, e, c.want[i])
			}
		}
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Wait(ctx, time.Hour) {
		t.Fatal("Wait reported the full delay on a cancelled context")
	}
	if !Wait(context.Background(), time.Millisecond) {
		t.Fatal("Wait did not report the full delay")
	}
}

func TestLimiterOncePerInterval(t *testing.T) {
	l := NewLimiter(time.Minute)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		ok   bool
		held int
	}{
		{0, true, 0},
		{10 * time.Second, false, 0},
		{59 * time.Second, false, 0},
		{60 * time.Second, true, 2},
		{61 * time.Second, false, 0},
		{3 * time.Minute, true, 1},
	}
	for _, s := range steps {
		ok, held := l.Allow(t0.Add(s.at))
		if ok != s.ok || held != s.held {
			t.Errorf("at %v: Allow = %v, %d; want %v, %d", s.at, ok, held, s.ok, s.held)
		}
	}
	l.Reset()
	if ok, _ := l.Allow(t0.Add(3*time.Minute + time.Second)); !ok {
		t.Error("after Reset the next event was held back")
	}
	var zero Limiter
	for range 3 {
		if ok, _ := zero.Allow(t0); !ok {
			t.Error("a zero-interval limiter held an event back")
		}
	}
}
