package enrich_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/enrich"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip/geoiptest"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/graph"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
)

func decoder(t *testing.T, e pipeline.Enricher) *pipeline.Decoder {
	t.Helper()
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline.Decoder{Catalog: cat, Now: time.Now, Enrich: e}
}

func sample(t *testing.T, name string) []stream.Body {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata.Project(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return []stream.Body{{Data: data, Pos: stream.Position{Kind: "file", File: name, Line: 1}}}
}

func graphConfig(t *testing.T, s *graphapi.Server) *graph.Config {
	t.Helper()
	cfg := graph.DefaultConfig()
	cfg.TenantID, cfg.ClientID, cfg.ClientSecret = graphapi.TenantID, graphapi.ClientID, secret.New(graphapi.ClientSecret)
	cfg.AuthorityHost, cfg.Endpoint, cfg.DisableInstanceDiscovery = s.URL(), s.URL(), true
	cfg.CAFile = s.CAFile(t, t.TempDir())
	return &cfg
}

// TestPipelineWithSlowGraph: with a Graph that does not answer, every
// document of the batch still comes out of the decode stage, in order,
// with its GeoIP fields; those with a target user are counted as sent
// without enrichment.
func TestPipelineWithSlowGraph(t *testing.T) {
	s := graphapi.New(t)
	s.Inject(graphapi.Fault{Delay: time.Hour, Times: 1000})
	gcfg := graphConfig(t, s)
	gcfg.MaxWait = 10 * time.Millisecond
	city, asn := geoiptest.Sample(t, t.TempDir())
	set, err := enrich.New(geoip.Config{CityDatabase: city, ASNDatabase: asn}, gcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })

	plain := decoder(t, nil).Decode(sample(t, "sspr/eventhub-body-mixed.json"))
	res := decoder(t, set).Decode(sample(t, "sspr/eventhub-body-mixed.json"))
	if len(res.Docs) != len(plain.Docs) || len(res.Docs) != 15 {
		t.Fatalf("%d documents with enrichment, %d without; want 15 both", len(res.Docs), len(plain.Docs))
	}
	withTarget, withGeo := 0, 0
	for i := range res.Docs {
		if res.Docs[i].Event.ID != plain.Docs[i].Event.ID {
			t.Fatalf("document %d is %s, want %s: order changed", i, res.Docs[i].Event.ID, plain.Docs[i].Event.ID)
		}
		if res.Docs[i].User.Target.ID != "" {
			withTarget++
		}
		if res.Docs[i].Source.Geo.CountryISOCode != "" {
			withGeo++
		}
		if res.Docs[i].User.Target.Group.ID != nil {
			t.Errorf("%s: groups from a Graph that never answered", res.Docs[i].Event.ID)
		}
	}
	if withGeo == 0 {
		t.Error("no document got GeoIP fields")
	}
	st := set.Stats()
	if st.Graph == nil || st.Graph.Unenriched != int64(withTarget) {
		t.Errorf("graph stats %+v, want %d documents counted unenriched", st.Graph, withTarget)
	}
	if len(st.GeoIPDatabases) != 2 || st.GeoIPDatabases[0].Type != "GeoLite2-City" {
		t.Errorf("databases %+v", st.GeoIPDatabases)
	}
}

// TestPipelineWithGraph: documents get the target's groups and roles.
func TestPipelineWithGraph(t *testing.T) {
	s := graphapi.New(t)
	res0 := decoder(t, nil).Decode(sample(t, "sspr/eventhub-body-mixed.json"))
	for _, d := range res0.Docs {
		s.AddUser(graphapi.User{ID: d.User.Target.ID, Groups: []graphapi.Group{{ID: "g1", DisplayName: "SSPR Pilot"}}, Roles: []graphapi.Role{{ID: "r1", DisplayName: "Helpdesk Administrator"}}})
	}
	gcfg := graphConfig(t, s)
	gcfg.MaxWait = time.Minute // a bound: Decode returns once Graph answered
	set, err := enrich.New(geoip.Config{}, gcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	res := decoder(t, set).Decode(sample(t, "sspr/eventhub-body-mixed.json"))
	for _, d := range res.Docs {
		if d.User.Target.ID == "" {
			continue
		}
		if strings.Join(d.User.Target.Group.Name, ",") != "SSPR Pilot" || strings.Join(d.User.Target.Roles, ",") != "Helpdesk Administrator" {
			t.Errorf("%s: target %+v", d.Event.ID, d.User.Target)
		}
		if d.Source.Geo.CountryISOCode != "" {
			t.Errorf("%s: GeoIP fields without a database", d.Event.ID)
		}
	}
	if st := set.Stats(); st.Graph.Unenriched != 0 || st.Graph.Lookups[graph.ResultOK] == 0 {
		t.Errorf("stats %+v", st.Graph)
	}
}

// TestUnknownReasonsCounted: with no enricher configured, the set still
// counts flow records whose reason has no step.
func TestUnknownReasonsCounted(t *testing.T) {
	set, err := enrich.New(geoip.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := decoder(t, set).Decode(sample(t, "trail/flow-steps.json"))
	if len(res.Docs) == 0 {
		t.Fatal("no documents")
	}
	st := set.Stats()
	if st.UnknownReasons != 1 || st.Graph != nil || st.GeoIPDatabases != nil {
		t.Errorf("stats %+v, want one unknown reason and no enricher", st)
	}
	if err := set.Close(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestNewErrorsNameTheKey(t *testing.T) {
	if _, err := enrich.New(geoip.Config{CityDatabase: filepath.Join(t.TempDir(), "none.mmdb")}, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "geoip.city_database: ") {
		t.Errorf("missing database: %v", err)
	}
	cfg := graph.DefaultConfig()
	cfg.TenantID = graphapi.TenantID
	cfg.CAFile = filepath.Join(t.TempDir(), "none.pem")
	if _, err := enrich.New(geoip.Config{}, &cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "graph: ca_file: ") {
		t.Errorf("missing CA file: %v", err)
	}
}
