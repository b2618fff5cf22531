package elasticsearch_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/app"
	appconfig "github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// The tests of this file run against real Elasticsearch nodes, one at a
// time, grouped by engine so that each starts once.
func TestMain(m *testing.M) { os.Exit(searchnode.Main(m)) }

func TestElasticsearch8Node(t *testing.T) { nodeTests(t, searchnode.ES8) }
func TestElasticsearch8Limits(t *testing.T) {
	bulktest.RunLimits(t, output(), searchnode.Start(t, searchnode.ES8, bulktest.LimitSettings()...).URL())
}
func TestElasticsearch9Node(t *testing.T) { nodeTests(t, searchnode.ES9) }
func TestElasticsearch9Limits(t *testing.T) {
	bulktest.RunLimits(t, output(), searchnode.Start(t, searchnode.ES9, bulktest.LimitSettings()...).URL())
}

func nodeTests(t *testing.T, e searchnode.Engine) {
	url := searchnode.Shared(t, e).URL()
	t.Run("Setup", func(t *testing.T) { setupOnNode(t, url) })
	bulktest.Run(t, output(), url)
}

// config is the output's configuration for the node at url with o.
func config(url string, o bulk.Options) elasticsearch.Config {
	cfg := elasticsearch.DefaultConfig()
	cfg.Addresses = []string{url}
	cfg.Index, cfg.Bulk, cfg.Retry = o.Index, o.Limits, o.Retry
	cfg.RequestTimeout, cfg.LogInterval, cfg.ILM.RetentionDays = o.RequestTimeout, o.LogInterval, o.RetentionDays
	return cfg
}

func output() bulktest.Output {
	return bulktest.Output{
		New: func(url string, o bulk.Options, l *slog.Logger) (*bulk.Sink, error) {
			return elasticsearch.New(config(url, o), l)
		},

		Setup: func(t testing.TB, url, prefix string) {
			t.Helper()
			cfg := config(url, bulktest.Options(prefix))
			if _, err := elasticsearch.SetupWith(bulktest.Ctx(t), cfg, nil, nodeAssets(t, cfg)); err != nil {
				t.Fatalf("setup: %v", err)
			}
		},
		MappingError: "document_parsing_exception",
		Decoder:      decoder,
		MaxBodyBytes: int(defaults.Decode.MaxBodyBytes),
	}
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

// nodeAssets is what the test nodes take of the shipped assets for cfg
// (bulktest.NodeAssets).
func nodeAssets(t testing.TB, cfg elasticsearch.Config) []elasticsearch.Asset {
	t.Helper()
	shipped, err := elasticsearch.Assets(cfg)
	if err != nil {
		t.Fatal(err)
	}
	node, err := bulktest.NodeAssets(shipped)
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// leaves lists every leaf of a JSON value as "path=value".
func leaves(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			leaves(prefix+"."+k, e, out)
		}
	case []any:
		for i, e := range x {
			leaves(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	default:
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}

// TestNodeAssetsDifferOnlyThere lists every difference between the shipped
// assets and what the node tests install: the ILM policy, the two
// lifecycle settings, and match_only_text as text; nothing else.
func TestNodeAssetsDifferOnlyThere(t *testing.T) {
	cfg := elasticsearch.DefaultConfig()
	shipped, _ := elasticsearch.Assets(cfg)
	node := map[string]elasticsearch.Asset{}
	for _, a := range nodeAssets(t, cfg) {
		node[a.Name+" "+a.Kind] = a
	}
	var diffs []string
	for _, a := range shipped {
		n, ok := node[a.Name+" "+a.Kind]
		if !ok {
			diffs = append(diffs, a.Kind+" "+a.Name+": left out")
			continue
		}
		if n.Hash != a.Hash {
			diffs = append(diffs, a.Name+": content hash changed")
		}
		var sv, nv any
		_ = json.Unmarshal(a.Body, &sv)
		_ = json.Unmarshal(n.Body, &nv)
		sl, nl := map[string]string{}, map[string]string{}
		leaves("", sv, sl)
		leaves("", nv, nl)
		for k, v := range sl {
			switch w, ok := nl[k]; {
			case !ok:
				diffs = append(diffs, a.Name+k+": removed")
			case w != v:
				diffs = append(diffs, a.Name+k+": "+v+" -> "+w)
			}
		}
		for k := range nl {
			if _, ok := sl[k]; !ok {
				diffs = append(diffs, a.Name+k+": added")
			}
		}
	}
	sort.Strings(diffs)
	var want []string
	for _, f := range []string{"user.name", "user.full_name", "user.target.name", "user.target.full_name", "user_agent.original", "source.as.organization.name"} {
		p := "entra-sspr@mappings.template.mappings.properties." + strings.ReplaceAll(f, ".", ".properties.") + ".fields.text.type"
		want = append(want, p+`: "match_only_text" -> "text"`)
	}
	want = append(want,
		"entra-sspr@settings.template.settings.index.lifecycle.name: removed",
		"entra-sspr@settings.template.settings.index.lifecycle.parse_origination_date: removed",
		"ilm_policy entra-sspr: left out")
	sort.Strings(want)
	if !reflect.DeepEqual(diffs, want) {
		t.Errorf("differences between the shipped assets and the node's:\n%s\nwant:\n%s", strings.Join(diffs, "\n"), strings.Join(want, "\n"))
	}
}

// setupOnNode installs the templates on the node (as far as it takes
// them), idempotently; check accepts them; the node holds exactly the
// mappings sent; and the node's missing ILM API fails the full check with
// its answer, as it would on a cluster without ILM.
func setupOnNode(t *testing.T, url string) {
	cfg := config(url, bulktest.Options("ct-setup"))
	assets := nodeAssets(t, cfg)
	changed, err := elasticsearch.SetupWith(bulktest.Ctx(t), cfg, nil, assets)
	if err != nil || !changed {
		t.Fatalf("first setup: changed=%v err=%v", changed, err)
	}
	if changed, err := elasticsearch.SetupWith(bulktest.Ctx(t), cfg, nil, assets); err != nil || changed {
		t.Errorf("second setup: changed=%v err=%v", changed, err)
	}
	if err := elasticsearch.CheckWith(bulktest.Ctx(t), cfg, assets); err != nil {
		t.Errorf("check of what was installed: %v", err)
	}
	var sent map[string]any
	_ = json.Unmarshal(assets[1].Body, &sent)
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
	if len(got.List) != 1 || !reflect.DeepEqual(got.List[0].T.Template.Mappings, bulktest.Dig(sent, "template", "mappings")) {
		t.Errorf("the node holds other mappings than were sent:\n%+v", got)
	}
	err = elasticsearch.Check(bulktest.Ctx(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "ILM policy ct-setup: HTTP 400") {
		t.Errorf("full check on a node without ILM: %v, want the ILM policy's 400", err)
	}
}

// BenchmarkRealNode writes into a real Elasticsearch 8.19 node: one op is
// a Write of 1000 new documents of about 1.5 KB (one bulk request). Beside
// docs/s it reports the CPU the exporter's process and the node's process
// spent per document, from the kernel's accounting of each.
func BenchmarkRealNode(b *testing.B) {
	n := searchnode.Shared(b, searchnode.ES8)
	url := n.URL()
	const prefix = "bench-real"
	out := output()
	out.Setup(b, url, prefix)
	s := out.Sink(b, url, bulktest.Options(prefix), nil)
	docs := bulktest.SizedEvents("bench", 1000)
	nextIDs := func() []string {
		out := make([]string, len(docs))
		r := benchRound.Add(1)
		for i := range out {
			out[i] = fmt.Sprintf("bench-%d-%05d", r, i)
		}
		return out
	}
	// Warm the node up (JIT, the index's creation) outside the timing.
	for i, id := range nextIDs() {
		docs[i].Event.ID = id
	}
	if err := s.Write(bulktest.Ctx(b), docs); err != nil {
		b.Fatal(err)
	}
	selfStart, nodeStart := processCPU(b, os.Getpid()), processCPU(b, n.PID())
	written := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for i, id := range nextIDs() {
			docs[i].Event.ID = id
		}
		b.StartTimer()
		if err := s.Write(bulktest.Ctx(b), docs); err != nil {
			b.Fatal(err)
		}
		written += len(docs)
	}
	b.StopTimer()
	self, node := processCPU(b, os.Getpid())-selfStart, processCPU(b, n.PID())-nodeStart
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(self.Seconds()*1e6/float64(written), "exporter-cpu-µs/doc")
	b.ReportMetric(node.Seconds()*1e6/float64(written), "node-cpu-µs/doc")
	if st := s.Stats(); st.Created != int64(written+len(docs)) {
		b.Errorf("stats %+v: want %d created", st, written+len(docs))
	}
}

// benchRound numbers the batches of BenchmarkRealNode across its runs, so
// that every batch is new to the node.
var benchRound atomic.Int64

// processCPU is the user and system CPU time a process has used, from
// /proc/PID/stat (in clock ticks of 10 ms).
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("cpu of %d: %v", pid, err)
	}
	// The command name, in parentheses, may hold spaces: count after it.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
