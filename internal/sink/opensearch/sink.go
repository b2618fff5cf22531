package opensearch

import (
	"log/slog"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// Name is the sink's name in rejections and logs.
const Name = "opensearch"

// Sink writes ECS documents with bulk "create" requests (the shared
// search-engine core). It implements stream.Sink and stream.Readiness;
// Write may be called concurrently.
type Sink = bulk.Sink

// Stats are the sink's counters since New.
type Stats = bulk.Stats

// ItemError is OpenSearch's refusal of one document, as carried in a
// stream.Rejection.
type ItemError = bulk.ItemError

// New builds the sink. It does not contact OpenSearch.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, invalid(errs)
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return bulk.New(engine, c, cfg.Options(cfg.ISM.RetentionDays), Redactor(cfg), logger), nil
}
