package opensearch_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/app"
	appconfig "github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/opensearch"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// The tests of this file run against a real OpenSearch node, started once
// for the shared checks and once with small limits.
func TestMain(m *testing.M) { os.Exit(searchnode.Main(m)) }

func TestOpenSearch2Node(t *testing.T) {
	url := searchnode.Shared(t, searchnode.OpenSearch2).URL()
	t.Run("Setup", func(t *testing.T) { setupOnNode(t, url) })
	t.Run("NoBackdatedCreation", func(t *testing.T) { noBackdatedCreation(t, url) })
	bulktest.Run(t, output(), url)
}

// noBackdatedCreation records why the ISM policy counts retention from an
// index's creation, not from the date in its name: ISM's min_index_age
// reads index.creation_date, which OpenSearch does not let a request set,
// neither when an index is created nor in a template.
func noBackdatedCreation(t *testing.T, url string) {
	const created = `{"settings":{"index.creation_date":1577836800000}}`
	st, body := bulktest.Call(t, url, http.MethodPut, "/ct-creation-2020.01.01", created)
	if st != http.StatusBadRequest || !strings.Contains(string(body), "unknown setting [index.creation_date]") {
		t.Errorf("index created with a creation date: %d %s", st, body)
	}
	st, body = bulktest.Call(t, url, http.MethodPut, "/_index_template/ct-creation", `{"index_patterns":["ct-creation-*"],"template":`+created+`}`)
	if st != http.StatusBadRequest || !strings.Contains(string(body), "unknown setting [index.creation_date]") {
		t.Errorf("template with a creation date: %d %s", st, body)
	}
}

func TestOpenSearch2Limits(t *testing.T) {
	bulktest.RunLimits(t, output(), searchnode.Start(t, searchnode.OpenSearch2, bulktest.LimitSettings()...).URL())
}

// config is the output's configuration for the node at url with o.
func config(url string, o bulk.Options) opensearch.Config {
	cfg := opensearch.DefaultConfig()
	cfg.Addresses = []string{url}
	cfg.Index, cfg.Bulk, cfg.Retry = o.Index, o.Limits, o.Retry
	cfg.RequestTimeout, cfg.LogInterval, cfg.ISM.RetentionDays = o.RequestTimeout, o.LogInterval, o.RetentionDays
	return cfg
}

// defaults is the exporter's default configuration; decoder its decode
// stage, as the exporter builds it.
var (
	defaults = appconfig.Default()
	decoder  = func() pipeline.Decoder {
		d, err := app.Decoder(defaults)
		if err != nil {
			panic(err)
		}
		return d
	}()
)

func output() bulktest.Output {
	return bulktest.Output{
		New: func(url string, o bulk.Options, l *slog.Logger) (*bulk.Sink, error) {
			return opensearch.New(config(url, o), l)
		},

		// The node takes the shipped templates unchanged; it runs without
		// the ISM plugin, which Setup notices and says.
		Setup: func(t testing.TB, url, prefix string) {
			t.Helper()
			if _, err := opensearch.Setup(bulktest.Ctx(t), config(url, bulktest.Options(prefix)), nil); err != nil {
				t.Fatalf("setup: %v", err)
			}
		},
		MappingError: "mapper_parsing_exception",
		Decoder:      decoder,
		MaxBodyBytes: int(defaults.Decode.MaxBodyBytes),
	}
}

// setupOnNode installs the shipped templates, unchanged, idempotently;
// says in one sentence that ISM does not answer; check accepts the result;
// and the node holds exactly the mappings sent.
func setupOnNode(t *testing.T, url string) {
	cfg := config(url, bulktest.Options("ct-setup"))
	res, err := opensearch.Setup(bulktest.Ctx(t), cfg, nil)
	if err != nil || !res.Changed {
		t.Fatalf("first setup: %+v, %v", res, err)
	}
	if !strings.Contains(res.NoISM, "ISM plugin does not answer") || !strings.Contains(res.NoISM, "HTTP 400") || strings.Contains(res.NoISM, "\n") {
		t.Errorf("setup on a node without ISM says %q, want one line naming the ISM plugin and the 400", res.NoISM)
	}
	if res, err := opensearch.Setup(bulktest.Ctx(t), cfg, nil); err != nil || res.Changed {
		t.Errorf("second setup: %+v, %v", res, err)
	}
	if err := opensearch.Check(bulktest.Ctx(t), cfg); err != nil {
		t.Errorf("check: %v", err)
	}
	assets, _ := opensearch.Assets(cfg)
	var got struct {
		List []struct {
			T struct {
				Template struct {
					Mappings any `json:"mappings"`
				} `json:"template"`
			} `json:"component_template"`
		} `json:"component_templates"`
	}
	_ = json.Unmarshal(bulktest.MustCall(t, url, http.MethodGet, "/_component_template/ct-setup@mappings", "", http.StatusOK), &got)
	var want map[string]any
	_ = json.Unmarshal(assets[2].Body, &want)
	if len(got.List) != 1 || !reflect.DeepEqual(got.List[0].T.Template.Mappings, want["template"].(map[string]any)["mappings"]) {
		t.Errorf("the node holds other mappings than were sent:\n%+v", got)
	}
}
