package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEnrichStatsFrom(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	st := EnrichStats{
		UnknownReasons: 3,
		GeoIPDatabases: []GeoIPDatabase{
			{Kind: "city", Type: "GeoLite2-City", Built: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)},
			{Kind: "asn", Type: "DBIP-ASN-Lite (compat=GeoLite2-ASN)", Built: time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)},
		},
		Graph: &GraphStats{Unenriched: 7, Lookups: map[string]int64{"ok": 5, "error": 2, "throttled": 1, "not_found": 0}, CacheEntries: 5},
	}
	m.EnrichStatsFrom(func() EnrichStats { return st })
	compare(t, m, `
# HELP sspr_exporter_flow_reasons_unknown_total Flow-progress and block documents whose result reason maps to no known entra.sspr.step; the reason is kept in event.reason.
# TYPE sspr_exporter_flow_reasons_unknown_total counter
sspr_exporter_flow_reasons_unknown_total 3
# HELP sspr_exporter_enrich_geoip_database_build_timestamp_seconds Build time (Unix seconds) of each GeoIP database in use; alert when it gets old.
# TYPE sspr_exporter_enrich_geoip_database_build_timestamp_seconds gauge
sspr_exporter_enrich_geoip_database_build_timestamp_seconds{database="asn",type="DBIP-ASN-Lite (compat=GeoLite2-ASN)"} 1.7619552e+09
sspr_exporter_enrich_geoip_database_build_timestamp_seconds{database="city",type="GeoLite2-City"} 1.7645472e+09
# HELP sspr_exporter_enrich_graph_unenriched_documents_total Documents with a target user sent without user.target.group and user.target.roles because Microsoft Graph had not answered in time.
# TYPE sspr_exporter_enrich_graph_unenriched_documents_total counter
sspr_exporter_enrich_graph_unenriched_documents_total 7
# HELP sspr_exporter_enrich_graph_lookups_total Microsoft Graph lookups of a user's groups and roles, by result: ok, not_found, error, throttled (a 429 or 503 answer, waited out and retried).
# TYPE sspr_exporter_enrich_graph_lookups_total counter
sspr_exporter_enrich_graph_lookups_total{result="error"} 2
sspr_exporter_enrich_graph_lookups_total{result="not_found"} 0
sspr_exporter_enrich_graph_lookups_total{result="ok"} 5
sspr_exporter_enrich_graph_lookups_total{result="throttled"} 1
# HELP sspr_exporter_enrich_graph_cache_entries Users whose groups and roles are cached.
# TYPE sspr_exporter_enrich_graph_cache_entries gauge
sspr_exporter_enrich_graph_cache_entries 5
`, "flow_reasons_unknown_total", "enrich_geoip_database_build_timestamp_seconds", "enrich_graph_unenriched_documents_total", "enrich_graph_lookups_total", "enrich_graph_cache_entries")

	// Values are read at each scrape.
	st.UnknownReasons = 4
	compare(t, m, `
# HELP sspr_exporter_flow_reasons_unknown_total Flow-progress and block documents whose result reason maps to no known entra.sspr.step; the reason is kept in event.reason.
# TYPE sspr_exporter_flow_reasons_unknown_total counter
sspr_exporter_flow_reasons_unknown_total 4
`, "flow_reasons_unknown_total")
	problems, err := testutil.GatherAndLint(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.Contains(p.Metric, "enrich") || strings.Contains(p.Metric, "flow_reasons") {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
}

// TestEnrichStatsWithoutGraph: with Graph off its metrics are absent, not
// zero.
func TestEnrichStatsWithoutGraph(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	m.EnrichStatsFrom(func() EnrichStats { return EnrichStats{} })
	compare(t, m, `
# HELP sspr_exporter_flow_reasons_unknown_total Flow-progress and block documents whose result reason maps to no known entra.sspr.step; the reason is kept in event.reason.
# TYPE sspr_exporter_flow_reasons_unknown_total counter
sspr_exporter_flow_reasons_unknown_total 0
`, "flow_reasons_unknown_total", "enrich_geoip_database_build_timestamp_seconds", "enrich_graph_unenriched_documents_total", "enrich_graph_lookups_total", "enrich_graph_cache_entries")
}

// TestEnrichStatsFromTwice: a second registration replaces the source.
func TestEnrichStatsFromTwice(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	m.EnrichStatsFrom(func() EnrichStats { return EnrichStats{UnknownReasons: 1} })
	m.EnrichStatsFrom(func() EnrichStats { return EnrichStats{UnknownReasons: 2} })
	compare(t, m, `
# HELP sspr_exporter_flow_reasons_unknown_total Flow-progress and block documents whose result reason maps to no known entra.sspr.step; the reason is kept in event.reason.
# TYPE sspr_exporter_flow_reasons_unknown_total counter
sspr_exporter_flow_reasons_unknown_total 2
`, "flow_reasons_unknown_total")
}
