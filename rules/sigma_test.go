// Package rules_test cross-checks the Sigma rules of rules/sigma against the
// built-in engine: pySigma converts them, a real Elasticsearch node holding
// a generated month of SSPR traffic runs the converted queries, and the
// hits must be the engine's alerts for every rule whose Sigma form is exact.
package rules_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/gen/scenario"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

func TestMain(m *testing.M) { os.Exit(searchnode.Main(m)) }

// converted is what sigma/tools/convert.py --json says of one rule file.
type converted struct {
	File  string `json:"file"`
	Rules []struct {
		ID          string   `json:"id"`
		Title       string   `json:"title"`
		Name        string   `json:"name"`
		Lucene      []string `json:"lucene"`
		ESQL        []string `json:"esql"`
		EQL         []string `json:"eql"`
		ESQLError   string   `json:"esql_error"`
		EQLError    string   `json:"eql_error"`
		LuceneError string   `json:"lucene_error"`
		Correlation *struct {
			Type            string   `json:"type"`
			Rules           []string `json:"rules"`
			GroupBy         []string `json:"group_by"`
			TimespanSeconds int      `json:"timespan_seconds"`
			Condition       struct {
				Op    string `json:"op"`
				Count int    `json:"count"`
				Field string `json:"field"`
			} `json:"condition"`
		} `json:"correlation"`
	} `json:"rules"`
}

// exactness says, per rule id, whether the Sigma form raises exactly the
// engine's alerts, and why not when it does not (rules/README.md has the
// same table).
var exactness = map[string]string{
	detect.IDFailedAttempts:        "",
	detect.IDSprayIP:               "",
	detect.IDAdminMassReset:        "",
	detect.IDPrivilegedReset:       "",
	detect.IDNewCountry:            "novelty over a 90-day history: Sigma selects every candidate reset (a superset)",
	detect.IDNewASN:                "novelty over a 90-day history: Sigma selects every candidate reset (a superset)",
	detect.IDSurgeDomain:           "baseline ratio and z-score: Sigma keeps only the floors (a superset)",
	detect.IDSurgeGroup:            "baseline ratio and z-score: Sigma keeps only the floors (a superset)",
	detect.IDResetThenSecInfo:      "sequence: EQL cannot compare the two events' addresses or countries (a superset); needs EQL, not on the test node",
	detect.IDAdminSecInfoThenReset: "sequence: EQL's maxspan and sequence matching differ from the engine's pairing; needs EQL, not on the test node",
}

// pySigma returns the venv's python, or skips (fails when servers are
// required) when scripts/deps/pysigma.sh has not run.
func pySigma(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("SSPR_TEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "sspr-exporter-test")
	}
	py := filepath.Join(cache, "pysigma", "bin", "python")
	if err := exec.Command(py, "-c", "import sigma.backends.elasticsearch").Run(); err != nil {
		msg := fmt.Sprintf("pySigma unavailable (%s: %v): run scripts/deps/pysigma.sh", py, err)
		if searchnode.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

func convert(t *testing.T, py string) []converted {
	t.Helper()
	cmd := exec.Command(py, filepath.Join("sigma", "tools", "convert.py"), "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("convert.py: %v\n%s", err, stderr.String())
	}
	var files []converted
	if err := json.Unmarshal(out, &files); err != nil {
		t.Fatalf("convert.py output: %v", err)
	}
	return files
}

// ruleID is the engine rule a Sigma file is for: its name.
func ruleID(file string) string { return strings.TrimSuffix(file, ".yml") }

// TestSigmaConverts: every rule file converts, one per engine rule, with a
// query for each backend its form needs.
func TestSigmaConverts(t *testing.T) {
	files := convert(t, pySigma(t))
	var ids []string
	for _, f := range files {
		id := ruleID(f.File)
		ids = append(ids, id)
		if _, ok := exactness[id]; !ok {
			t.Errorf("%s: no engine rule %s", f.File, id)
		}
		for _, r := range f.Rules {
			switch {
			case r.Correlation == nil && (len(r.Lucene) != 1 || len(r.ESQL) != 1):
				t.Errorf("%s: %s: Lucene %q (%s), ES|QL %q (%s)", f.File, r.Title, r.Lucene, r.LuceneError, r.ESQL, r.ESQLError)
			case r.Correlation != nil && strings.HasPrefix(r.Correlation.Type, "temporal"):
				if len(r.EQL) != 1 {
					t.Errorf("%s: %s: EQL %q (%s)", f.File, r.Title, r.EQL, r.EQLError)
				}
			case r.Correlation != nil && len(r.ESQL) != 1:
				t.Errorf("%s: %s: ES|QL %q (%s)", f.File, r.Title, r.ESQL, r.ESQLError)
			}
		}
	}
	for id := range exactness {
		if !slices.Contains(ids, id) {
			t.Errorf("no Sigma rule for %s", id)
		}
	}
}

// TestSigmaMatchesEngine loads a generated month into Elasticsearch 8.19
// with the exporter's own templates and sink, runs each converted query
// and compares the hits with the engine's alerts over the same documents:
// for windowed rules the (key, window start) pairs of the buckets at or
// over the threshold, for single-event rules the event ids. Exact rules
// must match; the others must at least hold every engine alert.
func TestSigmaMatchesEngine(t *testing.T) {
	py := pySigma(t)
	files := convert(t, py)
	node := searchnode.Shared(t, searchnode.ES8)
	ctx := bulktest.Ctx(t)

	s, err := scenario.Generate(scenario.Options{Scenario: scenario.Month, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	alerts := engineAlerts(t, s)
	load(t, ctx, node.URL(), s)
	esql := probe(node.URL(), "/_query", `{"query":"ROW a = 1"}`)
	if !esql {
		t.Log("ES|QL is not on the test node: correlations run as the converted Lucene base query with the correlation's buckets as an aggregation")
	}

	for _, f := range files {
		id := ruleID(f.File)
		t.Run(id, func(t *testing.T) {
			why := exactness[id]
			bases := map[string]string{} // base rule name -> Lucene query
			for _, r := range f.Rules {
				if r.Correlation == nil && len(r.Lucene) == 1 {
					bases[r.Name] = r.Lucene[0]
				}
			}
			want := engineSet(alerts, id)
			got := map[string]bool{}
			ran := false
			for _, r := range f.Rules {
				switch {
				case r.Correlation == nil && len(f.Rules) == 1:
					for _, hit := range search(t, ctx, node.URL(), r.Lucene[0]) {
						got[hit] = true
					}
					ran = true
				case r.Correlation != nil && !strings.HasPrefix(r.Correlation.Type, "temporal"):
					c := r.Correlation
					if len(c.Rules) != 1 || len(c.GroupBy) != 1 {
						t.Fatalf("%s: one base rule and one group-by field expected", r.Title)
					}
					for k := range buckets(t, ctx, node.URL(), bases[c.Rules[0]], c.GroupBy[0], c.Condition.Field, c.TimespanSeconds, c.Condition.Count) {
						got[k] = true
					}
					if esql && len(r.ESQL) == 1 {
						t.Logf("ES|QL available: %s", r.ESQL[0])
					}
					ran = true
				}
			}
			if !ran {
				t.Logf("not run (%s); converted to EQL only", why)
				return
			}
			var missing, extra []string
			for k := range want {
				if !got[k] {
					missing = append(missing, k)
				}
			}
			for k := range got {
				if !want[k] {
					extra = append(extra, k)
				}
			}
			slices.Sort(missing)
			slices.Sort(extra)
			if len(missing) > 0 {
				t.Errorf("engine alerts the Sigma rule does not find: %v", missing)
			}
			if why == "" && len(extra) > 0 {
				t.Errorf("Sigma hits the engine does not raise: %v", extra)
			}
			if why != "" {
				t.Logf("not exact (%s): %d engine alerts, %d Sigma hits", why, len(want), len(got))
			} else {
				t.Logf("exact: %d engine alerts, %d Sigma hits", len(want), len(got))
			}
			if len(want) == 0 {
				t.Error("the month raised no alert of this rule: nothing compared")
			}
		})
	}
}

// engineSet is what the engine raised for rule id, in the form the Sigma
// results take: "key|window start" for windowed rules, event ids for the
// single-event ones.
func engineSet(alerts []detect.Alert, id string) map[string]bool {
	out := map[string]bool{}
	for _, a := range alerts {
		if a.RuleID != id {
			continue
		}
		switch id {
		case detect.IDPrivilegedReset, detect.IDNewCountry, detect.IDNewASN:
			for _, e := range a.Evidence {
				out[e] = true
			}
		default:
			out[a.Key+"|"+a.Start.UTC().Format(time.RFC3339)] = true
		}
	}
	return out
}

func engineAlerts(t *testing.T, s *scenario.Stream) []detect.Alert {
	t.Helper()
	alerts, _, err := scenario.Detect(context.Background(), s, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return alerts
}

// load installs the exporter's templates (as the test nodes take them) and
// writes the stream with the Elasticsearch output.
func load(t *testing.T, ctx context.Context, url string, s *scenario.Stream) {
	t.Helper()
	cfg := elasticsearch.DefaultConfig()
	cfg.Addresses = []string{url}
	shipped, err := elasticsearch.Assets(cfg)
	if err != nil {
		t.Fatal(err)
	}
	assets, err := bulktest.NodeAssets(shipped)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range assets {
		do(t, ctx, http.MethodPut, url+a.Path(), a.Body)
	}
	sink, err := elasticsearch.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(ctx)
	for i := 0; i < len(s.Docs); i += 1000 {
		if err := sink.Write(ctx, s.Docs[i:min(i+1000, len(s.Docs))]); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	do(t, ctx, http.MethodPost, url+"/"+cfg.Index.Prefix+"-*/_refresh", nil)
}

func do(t *testing.T, ctx context.Context, method, url string, body []byte) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, url, res.Status, b)
	}
	return b
}

// probe reports whether the node answers path with a success.
func probe(url, path, body string) bool {
	res, err := http.Post(url+path, "application/json", strings.NewReader(body))
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode/100 == 2
}

const index = "/entra-sspr-*"

// search returns the _id (event.id) of every document the Lucene query hits.
func search(t *testing.T, ctx context.Context, url, q string) []string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"size": 10000, "_source": false, "query": map[string]any{"query_string": map[string]any{"query": q}}})
	var res struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(do(t, ctx, http.MethodPost, url+index+"/_search", body), &res); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range res.Hits.Hits {
		ids = append(ids, h.ID)
	}
	return ids
}

// buckets runs the base query with the correlation as an aggregation:
// epoch-aligned buckets of the timespan (as ES|QL's date_trunc) per group
// value, counting events, or the distinct values of field when set; it
// returns "group|bucket start" of the buckets at or over min.
func buckets(t *testing.T, ctx context.Context, url, q, group, field string, span, minimum int) map[string]bool {
	t.Helper()
	agg := map[string]any{
		"composite": map[string]any{"size": 10000, "sources": []any{
			map[string]any{"w": map[string]any{"date_histogram": map[string]any{"field": "@timestamp", "fixed_interval": fmt.Sprintf("%ds", span)}}},
			map[string]any{"k": map[string]any{"terms": map[string]any{"field": group}}},
		}},
	}
	if field != "" {
		agg["aggs"] = map[string]any{"v": map[string]any{"cardinality": map[string]any{"field": field, "precision_threshold": 40000}}}
	}
	body, _ := json.Marshal(map[string]any{"size": 0, "query": map[string]any{"query_string": map[string]any{"query": q}}, "aggs": map[string]any{"c": agg}})
	var res struct {
		Aggregations struct {
			C struct {
				Buckets []struct {
					Key struct {
						W int64 `json:"w"`
						K any   `json:"k"`
					} `json:"key"`
					DocCount int `json:"doc_count"`
					V        struct {
						Value int `json:"value"`
					} `json:"v"`
				} `json:"buckets"`
			} `json:"c"`
		} `json:"aggregations"`
	}
	if err := json.Unmarshal(do(t, ctx, http.MethodPost, url+index+"/_search", body), &res); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, b := range res.Aggregations.C.Buckets {
		n := b.DocCount
		if field != "" {
			n = b.V.Value
		}
		if n >= minimum {
			out[fmt.Sprint(b.Key.K)+"|"+time.UnixMilli(b.Key.W).UTC().Format(time.RFC3339)] = true
		}
	}
	return out
}
