package enrich_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sspr-exporter/sspr-exporter/internal/app"
	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip/geoiptest"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
)

// TestExporterWithGraphDown runs the exporter as configured (file in,
// stdout out) with GeoIP databases and a Microsoft Graph that never
// answers: every event is written, with its GeoIP fields, the metric counts
// the documents sent without groups, and readiness stays ready.
func TestExporterWithGraphDown(t *testing.T) {
	s := graphapi.New(t)
	s.Inject(graphapi.Fault{Delay: time.Hour, Times: 1000, Path: "transitiveMemberOf"})
	city, asn := geoiptest.Sample(t, t.TempDir())

	cfg := config.Default()
	cfg.Input.File.Paths = []string{filepath.Join(testdata.Project(t), "sample", "eventhub-body-mixed.json")}
	cfg.Enrich.GeoIP.CityDatabase, cfg.Enrich.GeoIP.ASNDatabase = city, asn
	g := &cfg.Enrich.Graph
	g.Enabled = true
	g.TenantID, g.ClientID, g.ClientSecret = graphapi.TenantID, graphapi.ClientID, secret.New(graphapi.ClientSecret)
	g.AuthorityHost, g.Endpoint, g.DisableInstanceDiscovery = s.URL(), s.URL(), true
	g.CAFile = s.CAFile(t, t.TempDir())
	g.MaxWait = 10 * time.Millisecond
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}

	logger := slog.New(slog.DiscardHandler)
	tel := telemetry.New(cfg.Telemetry, logger, nil)
	var out bytes.Buffer
	ex, err := app.Build(cfg, app.Std{In: strings.NewReader(""), Out: &out, Err: io.Discard}, logger, tel)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := ex.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := ex.Pipeline.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 15 {
		t.Fatalf("%d documents written, want the sample's 15", len(lines))
	}
	for _, l := range lines {
		if strings.Contains(l, `"group"`) || strings.Contains(l, `"roles"`) {
			t.Errorf("groups from a Graph that never answered: %s", l)
		}
	}
	if !strings.Contains(out.String(), `"geo":{`) {
		t.Error("no document has source.geo")
	}
	if rep := tel.Health.Check(); !rep.Ready {
		t.Errorf("not ready: %+v", rep)
	}
	n, err := testutil.GatherAndCount(tel.Metrics.Gatherer(), "sspr_exporter_enrich_graph_unenriched_documents_total")
	if err != nil || n != 1 {
		t.Fatalf("unenriched metric: %d series, %v", n, err)
	}
	want := `
# HELP sspr_exporter_enrich_graph_unenriched_documents_total Documents with a target user sent without user.target.group and user.target.roles because Microsoft Graph had not answered in time.
# TYPE sspr_exporter_enrich_graph_unenriched_documents_total counter
sspr_exporter_enrich_graph_unenriched_documents_total 15
`
	if err := testutil.GatherAndCompare(tel.Metrics.Gatherer(), strings.NewReader(want), "sspr_exporter_enrich_graph_unenriched_documents_total"); err != nil {
		t.Error(err)
	}
}
