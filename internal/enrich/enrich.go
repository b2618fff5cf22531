// Package enrich adds to the documents what the audit records do not
// carry: where the source address is (geoip) and the target user's groups
// and roles (graph). Set is the pipeline's Enricher; it also counts flow
// records whose result reason is not one the catalog knows.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/graph"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/metrics"
)

// Set is the configured enrichers, applied in order: GeoIP (a pure
// lookup), then Graph (bounded waits).
type Set struct {
	geo   *geoip.Enricher
	graph *graph.Enricher

	unknownReasons atomic.Int64
}

// New opens the GeoIP databases of geoCfg (none when it names none) and,
// when graphCfg is not nil, starts the Graph enricher. Errors name the
// key they concern, relative to [enrich].
func New(geoCfg geoip.Config, graphCfg *graph.Config, logger *slog.Logger) (*Set, error) {
	s := &Set{}
	if geoCfg.Enabled() {
		g, err := geoip.New(geoCfg)
		if err != nil {
			return nil, fmt.Errorf("geoip.%w", err)
		}
		s.geo = g
	}
	if graphCfg != nil {
		g, err := graph.New(*graphCfg, logger)
		if err != nil {
			_ = s.Close(context.Background())
			return nil, fmt.Errorf("graph: %w", err)
		}
		s.graph = g
	}
	return s, nil
}

// Enrich enriches one batch's documents in place.
func (s *Set) Enrich(docs []ecs.Event) {
	for i := range docs {
		if sspr.UnknownReason(&docs[i]) {
			s.unknownReasons.Add(1)
		}
	}
	if s.geo != nil {
		s.geo.Enrich(docs)
	}
	if s.graph != nil {
		s.graph.Enrich(docs)
	}
}

// Close stops the Graph lookups and releases the databases.
func (s *Set) Close(ctx context.Context) error {
	var errs []error
	if s.graph != nil {
		errs = append(errs, s.graph.Close(ctx))
	}
	if s.geo != nil {
		errs = append(errs, s.geo.Close())
	}
	return errors.Join(errs...)
}

// Stats returns the enrichment totals for the metrics.
func (s *Set) Stats() metrics.EnrichStats {
	st := metrics.EnrichStats{UnknownReasons: s.unknownReasons.Load()}
	if s.geo != nil {
		for _, d := range s.geo.Databases() {
			st.GeoIPDatabases = append(st.GeoIPDatabases, metrics.GeoIPDatabase{Kind: d.Kind, Type: d.Type, Built: d.Built})
		}
	}
	if s.graph != nil {
		g := s.graph.Stats()
		st.Graph = &metrics.GraphStats{Unenriched: g.Unenriched, Lookups: g.Lookups, CacheEntries: int64(g.CacheEntries)}
	}
	return st
}
