package app

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
)

// startupBackoff spaces the start-up attempts: from Initial, doubling, up
// to Max, each with up to a fifth of random jitter so that instances that
// start together do not retry together.
type startupBackoff struct {
	Initial, Max time.Duration
}

func (b startupBackoff) delays() (first, limit time.Duration) {
	first, limit = b.Initial, b.Max
	if first <= 0 {
		first = time.Second
	}
	if limit <= 0 {
		limit = 30 * time.Second
	}
	return first, max(first, limit)
}

// prepareWithRetry runs Prepare until it succeeds or ctx ends. An output
// that is down, not yet set up or refusing the credentials when the
// service starts is the same condition as one that fails later: the
// service waits for it, says why in its log and on /readyz, and starts
// reading as soon as it is ready, so no supervisor or operator has to
// restart it. Nothing is read before, so nothing is at risk meanwhile.
func prepareWithRetry(ctx context.Context, cfg config.Config, logger *slog.Logger, tel *telemetry.Telemetry, b startupBackoff) error {
	var (
		mu      sync.Mutex
		lastErr = errors.New("checking the outputs")
	)
	tel.Health.AddFunc("startup", func() error {
		mu.Lock()
		defer mu.Unlock()
		return lastErr
	})
	setLast := func(err error) {
		mu.Lock()
		lastErr = err
		mu.Unlock()
	}
	delay, limit := b.delays()
	for attempt := 1; ; attempt++ {
		err := Prepare(ctx, cfg, logger)
		if err == nil {
			setLast(nil)
			if attempt > 1 {
				logger.Info("outputs ready", "component", "startup", "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		setLast(err)
		wait := delay + rand.N(delay/5+1)
		logger.Error("outputs not ready; retrying", "component", "startup", "attempt", attempt, "retry_in", wait.Round(time.Millisecond).String(), "error", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		delay = min(2*delay, limit)
	}
}
