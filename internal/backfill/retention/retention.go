// Package retention tells whether a backfill range reaches back beyond
// what the outputs keep: an index lifecycle policy (Elasticsearch ILM,
// OpenSearch ISM) that deletes an index a number of days after the date
// its name carries deletes a backfilled month right after it was written
// and acknowledged, when that date is already that old.
package retention

import (
	"fmt"
	"time"
)

// Policy is one output's retention.
type Policy struct {
	// Key is the setting that holds the retention, for the message
	// (output.elasticsearch.ilm.retention_days).
	Key  string
	Days int
	// Bucket returns the date the policy counts from for an event dated
	// t: the first day of the index t is written to, as the output names
	// it.
	Bucket func(t time.Time) time.Time
}

// DeleteAt is when the policy deletes the index an event dated t goes to.
func (p Policy) DeleteAt(t time.Time) time.Time {
	return p.Bucket(t).AddDate(0, 0, p.Days)
}

// ExpiringError is a range whose first events are past an output's
// retention.
type ExpiringError struct {
	Policy   Policy
	From     time.Time
	DeleteAt time.Time
}

func (e *ExpiringError) Error() string {
	return fmt.Sprintf("the range starts %s, but %s = %d deletes the index of those events from %s on, right after they are written: raise it (and run setup) or pass --allow-expiring",
		e.From.UTC().Format(time.DateOnly), e.Policy.Key, e.Policy.Days, e.DeleteAt.UTC().Format(time.DateOnly))
}

// Check returns an *ExpiringError for the first policy that deletes the
// events of from (the oldest of the range) at or before now, counting as
// the outputs do; the later events of the range go to the same or later
// indices.
func Check(from, now time.Time, policies []Policy) error {
	for _, p := range policies {
		if p.Days <= 0 || p.Bucket == nil {
			continue
		}
		if at := p.DeleteAt(from); !now.Before(at) {
			return &ExpiringError{Policy: p, From: from, DeleteAt: at}
		}
	}
	return nil
}
