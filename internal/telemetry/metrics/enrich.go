package metrics

import (
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// EnrichStats are the enrichment stage's running totals and state.
type EnrichStats struct {
	// UnknownReasons counts flow-progress and block documents whose
	// result reason maps to no known step.
	UnknownReasons int64
	// GeoIPDatabases are the opened GeoIP databases.
	GeoIPDatabases []GeoIPDatabase
	// Graph is nil when Graph enrichment is off.
	Graph *GraphStats
}

// GeoIPDatabase is one opened GeoIP database.
type GeoIPDatabase struct {
	Kind  string // city or asn
	Type  string // database_type, e.g. GeoLite2-City
	Built time.Time
}

// GraphStats are the Graph enricher's totals.
type GraphStats struct {
	Unenriched   int64            // documents sent without groups and roles
	Lookups      map[string]int64 // finished lookups by result
	CacheEntries int64
}

var (
	descUnknownReasons = desc("flow_reasons_unknown_total", "Flow-progress and block documents whose result reason maps to no known entra.sspr.step; the reason is kept in event.reason.")
	descGeoIPBuild     = desc("enrich_geoip_database_build_timestamp_seconds", "Build time (Unix seconds) of each GeoIP database in use; alert when it gets old.", "database", "type")
	descGraphUnenrich  = desc("enrich_graph_unenriched_documents_total", "Documents with a target user sent without user.target.group and user.target.roles because Microsoft Graph had not answered in time.")
	descGraphLookups   = desc("enrich_graph_lookups_total", "Microsoft Graph lookups of a user's groups and roles, by result: ok, not_found, error, throttled (a 429 or 503 answer, waited out and retried).", "result")
	descGraphCache     = desc("enrich_graph_cache_entries", "Users whose groups and roles are cached.")
)

// EnrichStatsFrom reads the enrichment totals from f at every scrape; a
// later call replaces f (an exporter built again on the same metrics).
func (m *Metrics) EnrichStatsFrom(f func() EnrichStats) {
	err := m.reg.Register(&enrichCollector{f: f})
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
	case errors.As(err, &are):
		c := are.ExistingCollector.(*enrichCollector)
		c.mu.Lock()
		c.f = f
		c.mu.Unlock()
	default:
		panic(err) // the descriptors are constants: a bug, as MustRegister would say
	}
}

// enrichCollector reads the enrichers' totals at scrape time.
type enrichCollector struct {
	f  func() EnrichStats
	mu sync.Mutex // one read of f at a time
}

func (c *enrichCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUnknownReasons, descGeoIPBuild, descGraphUnenrich, descGraphLookups, descGraphCache} {
		ch <- d
	}
}

func (c *enrichCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	st := c.f()
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descUnknownReasons, prometheus.CounterValue, float64(st.UnknownReasons))
	for _, d := range st.GeoIPDatabases {
		ch <- prometheus.MustNewConstMetric(descGeoIPBuild, prometheus.GaugeValue, float64(d.Built.Unix()), d.Kind, d.Type)
	}
	if g := st.Graph; g != nil {
		ch <- prometheus.MustNewConstMetric(descGraphUnenrich, prometheus.CounterValue, float64(g.Unenriched))
		results := make([]string, 0, len(g.Lookups))
		for r := range g.Lookups {
			results = append(results, r)
		}
		sort.Strings(results)
		for _, r := range results {
			ch <- prometheus.MustNewConstMetric(descGraphLookups, prometheus.CounterValue, float64(g.Lookups[r]), r)
		}
		ch <- prometheus.MustNewConstMetric(descGraphCache, prometheus.GaugeValue, float64(g.CacheEntries))
	}
}
