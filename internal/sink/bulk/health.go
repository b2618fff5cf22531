package bulk

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
)

// failure kinds, each logged at most once per interval.
const (
	kindUnreachable = "unreachable"
	kindUnavailable = "unavailable"
	kindBusy        = "busy"
	kindBlocked     = "blocked"
)

var kinds = []string{kindUnreachable, kindUnavailable, kindBusy, kindBlocked}

// health tracks whether writes go through (the sink's readiness) and
// keeps the logging of failures that persist to once per interval and
// kind.
type health struct {
	name   string
	log    *slog.Logger
	logged map[string]*retry.Limiter // by kind; the map itself never changes

	mu     sync.Mutex
	reason string // non-empty while not ready
}

func newHealth(name string, log *slog.Logger, interval time.Duration) *health {
	h := &health{name: name, log: log, logged: map[string]*retry.Limiter{}}
	for _, k := range kinds {
		h.logged[k] = retry.NewLimiter(interval)
	}
	return h
}

func (h *health) ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reason != "" {
		return errors.New(h.reason)
	}
	return nil
}

func (h *health) fail(kind, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Back-pressure (429) is normal operation, not a reason to report the
	// exporter unready.
	if kind != kindBusy {
		h.reason = reason
	}
	ok, n := h.logged[kind].Allow(time.Now())
	if !ok {
		return
	}
	level := slog.LevelWarn
	if kind == kindBlocked {
		level = slog.LevelError
	}
	h.log.Log(context.Background(), level, reason, "kind", kind, "repeats_since_last_log", n,
		"action", "retrying with backoff; nothing is acknowledged until it succeeds")
}

func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reason != "" {
		h.log.Info(h.name+" accepts writes again", "previous_problem", h.reason)
		h.reason = ""
	}
	for _, l := range h.logged {
		l.Reset()
	}
}
