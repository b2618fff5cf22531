package esdouble

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

var record = flag.Bool("record", false, "record the answers of real nodes into testdata/recorded (needs scripts/deps/searchnodes.sh)")

const recordedDir = "testdata/recorded"

// step is one request of the recorded conversation. Steps run in order on
// one node (started with bulktest.LimitSettings) per engine; a step with a
// name is recorded under it.
type step struct {
	name               string
	method, path, body string
	onNode             func(t *testing.T, url string) (after func()) // sets the node up to answer as recorded
	onDouble           func(d *Double)                               // injects the same fault into the double
}

// A strict mapping with an ip field: a wrong ip and an unknown field are
// both per-item 400s.
const (
	recMappings = `{"template":{"mappings":{"dynamic":"strict","properties":{"@timestamp":{"type":"date"},"message":{"type":"keyword"},"source":{"properties":{"ip":{"type":"ip"}}}}}}}`
	recIndex    = `{"index_patterns":["rec-*"],"composed_of":["rec@mappings"],"priority":200,"template":{"settings":{"number_of_shards":1,"number_of_replicas":0}}}`
)

func createLine(index, id, src string) string {
	return fmt.Sprintf(`{"create":{"_index":%q,"_id":%q}}`+"\n%s\n", index, id, src)
}

// steps are every request shape the search outputs rely on.
func steps() []step {
	pad := func(n int) string { return fmt.Sprintf(`{"message":%q}`, strings.Repeat("m", n)) }
	var big, busy strings.Builder
	for i := range 50 {
		big.WriteString(createLine("rec-big", fmt.Sprint(i), pad(1000)))
	}
	for i := range 20 {
		busy.WriteString(createLine("rec-busy", fmt.Sprint(i), pad(1000)))
	}
	return []step{
		{name: "info", method: "GET", path: "/"},
		{name: "component-template-put", method: "PUT", path: "/_component_template/rec@mappings", body: recMappings},
		{name: "index-template-put", method: "PUT", path: "/_index_template/rec", body: recIndex},
		{name: "component-template-get", method: "GET", path: "/_component_template/rec@mappings"},
		{name: "index-template-get", method: "GET", path: "/_index_template/rec"},
		{name: "index-template-get-missing", method: "GET", path: "/_index_template/rec-nothing"},
		{name: "bulk-created", method: "POST", path: "/_bulk", body: createLine("rec-1", "a", `{"message":"a","source":{"ip":"192.0.2.1"}}`) +
			createLine("rec-1", "b", `{"message":"b"}`)},
		{name: "bulk-mixed", method: "POST", path: "/_bulk", body: createLine("rec-1", "c", `{"message":"c"}`) +
			createLine("rec-1", "a", `{"message":"a again"}`) +
			createLine("rec-1", "d", `{"source":{"ip":"not-an-ip"}}`) +
			createLine("rec-1", "e", `{"unknown":"field"}`)},
		// What the outputs send: the same with the answer cut to what they read.
		{name: "bulk-created-filtered", method: "POST", path: "/_bulk?filter_path=errors,items.*.status,items.*.error", body: createLine("rec-2", "a", `{"message":"a"}`) +
			createLine("rec-2", "b", `{"message":"b"}`)},
		{name: "bulk-mixed-filtered", method: "POST", path: "/_bulk?filter_path=errors,items.*.status,items.*.error", body: createLine("rec-2", "c", `{"message":"c"}`) +
			createLine("rec-2", "a", `{"message":"a again"}`) +
			createLine("rec-2", "d", `{"source":{"ip":"not-an-ip"}}`) +
			createLine("rec-2", "e", `{"unknown":"field"}`)},
		{name: "bulk-long-id", method: "POST", path: "/_bulk", body: createLine("rec-1", strings.Repeat("x", 513), `{"message":"x"}`) +
			createLine("rec-1", "f", `{"message":"f"}`)},
		{name: "refresh", method: "POST", path: "/rec-*/_refresh"},
		{name: "count", method: "GET", path: "/rec-*/_count"},
		{name: "doc-get", method: "GET", path: "/rec-1/_doc/a"},
		{name: "ilm-policy-get", method: "GET", path: "/_ilm/policy/rec"},
		{name: "ilm-policy-put", method: "PUT", path: "/_ilm/policy/rec", body: `{"policy":{"phases":{"delete":{"min_age":"1d","actions":{"delete":{}}}}}}`},
		{name: "ism-policies-get", method: "GET", path: "/_plugins/_ism/policies"},
		{name: "bulk-413", method: "POST", path: "/_bulk", body: big.String(),
			onDouble: func(d *Double) { d.SetMaxContentLength(48 << 10) }},
		{name: "bulk-429", method: "POST", path: "/_bulk", body: busy.String(),
			onNode: func(t *testing.T, url string) func() {
				release := bulktest.HoldIndexingMemory(t, url)
				return release
			},
			onDouble: func(d *Double) { d.FailNext(1, 429) }},
	}
}

// recorded is one request and the node's answer.
type recorded struct {
	Engine string `json:"engine"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Request is the request's body, or its first bytes and its size
	// when it is large.
	Request      string            `json:"request,omitempty"`
	RequestBytes int               `json:"request_bytes,omitempty"`
	Status       int               `json:"status"`
	Headers      map[string]string `json:"headers"`
	// Body is the answer when it is JSON; Text when it is not (or empty).
	Body json.RawMessage `json:"body,omitempty"`
	Text string          `json:"text,omitempty"`
}

// keptHeaders are the headers the outputs look at.
var keptHeaders = []string{"Content-Type", "X-Elastic-Product"}

func send(t *testing.T, base string, s step) recorded {
	t.Helper()
	req, err := http.NewRequest(s.method, base+s.path, strings.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", s.method, s.path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := recorded{Method: s.method, Path: s.path, Request: s.body, Status: res.StatusCode, Headers: map[string]string{}}
	if len(s.body) > 2048 {
		r.Request, r.RequestBytes = s.body[:300]+"...", len(s.body)
	}
	for _, h := range keptHeaders {
		if v := res.Header.Get(h); v != "" {
			r.Headers[h] = v
		}
	}
	if json.Valid(b) && len(bytes.TrimSpace(b)) > 0 {
		var out bytes.Buffer
		_ = json.Indent(&out, b, "", "  ")
		r.Body = out.Bytes()
	} else {
		r.Text = string(b)
	}
	return r
}

func engineDir(e searchnode.Engine) string {
	return map[searchnode.Engine]string{searchnode.ES8: "es8", searchnode.ES9: "es9", searchnode.OpenSearch2: "opensearch2"}[e]
}

// TestRecordedAnswers checks that the double answers every recorded
// request as the real node did: the same status, the headers the outputs
// read, and a body of the same shape (keys and JSON types; values such as
// took or _seq_no may differ). With -record it first records the answers
// from real nodes of each engine (go test -run TestRecordedAnswers -record).
func TestRecordedAnswers(t *testing.T) {
	for _, e := range searchnode.Engines() {
		t.Run(engineDir(e), func(t *testing.T) {
			dir := filepath.Join(recordedDir, engineDir(e))
			if *record {
				recordFrom(t, e, dir)
			}
			d := NewWith(nodeLike(e))
			defer d.Close()
			for _, s := range steps() {
				if s.onDouble != nil {
					s.onDouble(d)
				}
				got := send(t, d.URL(), s)
				if s.onDouble != nil {
					d.FailNext(0, 0)
					d.SetMaxContentLength(0)
				}
				if s.name == "" {
					continue
				}
				var want recorded
				raw, err := os.ReadFile(filepath.Join(dir, s.name+".json"))
				if err != nil {
					t.Fatalf("%v (record with go test -run TestRecordedAnswers -record)", err)
				}
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				compareRecorded(t, s.name, want, got)
			}
		})
	}
}

// nodeLike is the double's configuration answering as the test nodes of
// engine e do: no lifecycle plugin.
func nodeLike(e searchnode.Engine) Options {
	return Options{OpenSearch: !e.Elasticsearch(), NoILM: true, Version: e.Version()}
}

func recordFrom(t *testing.T, e searchnode.Engine, dir string) {
	n := searchnode.Start(t, e, bulktest.LimitSettings()...)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps() {
		var after func()
		if s.onNode != nil {
			after = s.onNode(t, n.URL())
		}
		r := send(t, n.URL(), s)
		if after != nil {
			after()
		}
		if s.name == "" {
			continue
		}
		r.Engine = e.String()
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.name+".json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("recorded %s into %s", e, dir)
}

func compareRecorded(t *testing.T, name string, want, got recorded) {
	t.Helper()
	if got.Status != want.Status {
		t.Errorf("%s: status %d, the node answered %d\ndouble: %s%s\nnode:   %s%s", name, got.Status, want.Status, got.Body, got.Text, want.Body, want.Text)
		return
	}
	for _, h := range keptHeaders {
		if mediaType(got.Headers[h]) != mediaType(want.Headers[h]) {
			t.Errorf("%s: header %s %q, the node sent %q", name, h, got.Headers[h], want.Headers[h])
		}
	}
	if (len(want.Body) == 0) != (len(got.Body) == 0) {
		t.Errorf("%s: body %q%s, the node's %q%s", name, got.Text, got.Body, want.Text, want.Body)
		return
	}
	if len(want.Body) == 0 {
		return
	}
	var wv, gv any
	_ = json.Unmarshal(want.Body, &wv)
	_ = json.Unmarshal(got.Body, &gv)
	ws, gs := map[string]string{}, map[string]string{}
	shape("", wv, ws)
	shape("", gv, gs)
	var diffs []string
	for k, v := range ws {
		if gs[k] != v {
			diffs = append(diffs, fmt.Sprintf("  %s: node %s, double %q", k, v, gs[k]))
		}
	}
	for k, v := range gs {
		if _, ok := ws[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("  %s: double %s, not in the node's answer", k, v))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Errorf("%s: the double's answer has another shape than the node's:\n%s\ndouble: %s\nnode:   %s", name, strings.Join(diffs, "\n"), got.Body, want.Body)
	}
}

// mediaType is a Content-Type without its parameters.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(strings.ToLower(mt))
}

// shape lists the paths of a JSON value with each one's JSON type; array
// elements are listed by position.
func shape(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[prefix] = "object"
		for k, e := range x {
			shape(prefix+"."+k, e, out)
		}
	case []any:
		out[prefix] = "array"
		for i, e := range x {
			shape(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	case string:
		out[prefix] = "string"
	case float64:
		out[prefix] = "number"
	case bool:
		out[prefix] = "boolean"
	case nil:
		out[prefix] = "null"
	}
}
