// Package retry is the one way components of the exporter try again: the
// retry settings a component's config embeds, the backoff between
// attempts (github.com/cenkalti/backoff/v5 with one jitter rule), and a
// limiter that keeps a persisting failure to one warning per interval.
package retry

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Jitter is the one jitter rule: every delay is drawn uniformly within
// ±Jitter of the current interval, so that instances failing together do
// not retry together.
const Jitter = 0.25

// Config is a component's retry settings, embedded in its config under a
// [*.retry] table: the first delay, doubling after each failed attempt up
// to MaxBackoff.
type Config struct {
	InitialBackoff time.Duration `toml:"initial_backoff"`
	MaxBackoff     time.Duration `toml:"max_backoff"`
}

// Validate returns the problems of c, each naming its key.
func (c Config) Validate() []error {
	var errs []error
	if c.InitialBackoff <= 0 {
		errs = append(errs, errors.New("initial_backoff: must be positive"))
	}
	if c.MaxBackoff < c.InitialBackoff {
		errs = append(errs, errors.New("max_backoff: must be at least initial_backoff"))
	}
	return errs
}

// Backoff returns a fresh backoff following c.
func (c Config) Backoff() *Backoff {
	return &Backoff{b: backoff.ExponentialBackOff{
		InitialInterval:     c.InitialBackoff,
		RandomizationFactor: Jitter,
		Multiplier:          2,
		MaxInterval:         max(c.MaxBackoff, c.InitialBackoff),
	}}
}

// Backoff spaces the attempts of one operation. It is not safe for
// concurrent use: each retry loop owns one.
type Backoff struct{ b backoff.ExponentialBackOff }

// Next returns the delay before the next attempt and grows the interval.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts again from the initial interval, after a success.
func (b *Backoff) Reset() { b.b.Reset() }

// Wait waits d or until ctx ends; it reports whether the full delay passed.
func Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Limiter lets one occurrence of a recurring event through per Interval
// and counts the ones it holds back, so that a failure that persists is
// warned about once per interval with how often it happened meanwhile.
// The zero value with a zero Interval lets everything through. It is safe
// for concurrent use.
type Limiter struct {
	Interval time.Duration

	mu   sync.Mutex
	last time.Time
	held int
}

// NewLimiter returns a limiter with the given interval.
func NewLimiter(interval time.Duration) *Limiter { return &Limiter{Interval: interval} }

// Allow reports whether the event at now may be reported, and how many
// were held back since the last one that was.
func (l *Limiter) Allow(now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.Interval {
		l.held++
		return false, 0
	}
	held, l.held = l.held, 0
	l.last = now
	return true, held
}

// Reset forgets the last report, so that the next event is reported at
// once: call it when the failure has healed.
func (l *Limiter) Reset() {
	l.mu.Lock()
	l.last, l.held = time.Time{}, 0
	l.mu.Unlock()
}
