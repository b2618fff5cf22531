package elasticsearch

import (
	"log/slog"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// Name is the sink's name in rejections and logs.
const Name = "elasticsearch"

// Sink writes ECS documents with bulk "create" requests (the shared
// search-engine core). It implements stream.Sink and stream.Readiness;
// Write may be called concurrently.
type Sink = bulk.Sink

// Stats are the sink's counters since New.
type Stats = bulk.Stats

// ItemError is Elasticsearch's refusal of one document, as carried in a
// stream.Rejection.
type ItemError = bulk.ItemError

// New builds the sink. It does not contact Elasticsearch.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, invalid(errs)
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return bulk.New(engine, c, cfg.Options(cfg.ILM.RetentionDays), Redactor(cfg), logger), nil
}

// IndexName returns the index an event dated t goes to: the prefix and the
// first day of t's bucket in UTC, e.g. entra-sspr-2026.11.01 for a monthly
// bucket. The date suffix is what index.lifecycle.parse_origination_date
// reads, so retention counts from the bucket's date.
func IndexName(prefix, granularity string, t time.Time) string {
	return bulk.IndexName(prefix, granularity, t)
}
