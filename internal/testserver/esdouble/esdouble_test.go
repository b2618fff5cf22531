package esdouble

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/typedapi/cluster/getcomponenttemplate"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/bulk"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/count"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/get"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/info"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/ilm/getlifecycle"
	"github.com/elastic/go-elasticsearch/v8/typedapi/ilm/putlifecycle"
	"github.com/elastic/go-elasticsearch/v8/typedapi/indices/getindextemplate"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/operationtype"
)

const spec = "testdata/spec-examples/"

func do(t *testing.T, d *Double, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, d.URL()+path, strings.NewReader(body))
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
	return res.StatusCode, res.Header, b
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("typed decode %T: %v\n%s", v, err, b)
	}
}

const mappingTemplate = `{"index_patterns":["ev-*"],"priority":200,"template":{"mappings":{"dynamic":false,"properties":{
  "@timestamp":{"type":"date"},"source":{"properties":{"ip":{"type":"ip"}}},"user":{"properties":{"name":{"type":"keyword"}}},
  "details":{"type":"flattened"}}}}}`

func TestProductHeaderOnEveryAnswer(t *testing.T) {
	d := New()
	defer d.Close()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"POST", "/_bulk", "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n"},
		{"GET", "/_ilm/policy/missing", ""},
		{"GET", "/missing/_count", ""},
		{"GET", "/nowhere/else", ""},
	} {
		_, h, _ := do(t, d, c.method, c.path, c.body)
		if h.Get("X-Elastic-Product") != "Elasticsearch" {
			t.Errorf("%s %s: X-Elastic-Product = %q", c.method, c.path, h.Get("X-Elastic-Product"))
		}
	}
	d.Forbid(true)
	_, h, _ := do(t, d, "POST", "/_bulk", "{}\n")
	if h.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Error("403 answer lacks X-Elastic-Product")
	}
}

func TestInfoMatchesFixtures(t *testing.T) {
	d := New()
	defer d.Close()
	st, _, b := do(t, d, "GET", "/", "")
	if st != 200 {
		t.Fatalf("GET / = %d", st)
	}
	var r info.Response
	decode(t, b, &r)
	if r.Version.Int != Version || r.Tagline != "You Know, for Search" {
		t.Errorf("info decoded as %+v", r)
	}
	sameKeys(t, "info", fixtureValue(t, spec+"_global/info/examples/response/RootNodeInfoResponseExample1.yaml"), b)
}

func TestBulkCreateConflictAndOrder(t *testing.T) {
	d := New()
	defer d.Close()
	body := "{\"create\":{\"_index\":\"test\",\"_id\":\"1\"}}\n{\"a\":1}\n" +
		"{\"create\":{\"_index\":\"test\",\"_id\":\"2\"}}\n{\"a\":2}\n" +
		"{\"create\":{\"_index\":\"test\",\"_id\":\"1\"}}\n{\"a\":3}\n" +
		"{\"create\":{\"_index\":\"other\",\"_id\":\"1\"}}\n{\"a\":4}\n"
	st, _, b := do(t, d, "POST", "/_bulk", body)
	if st != 200 {
		t.Fatalf("bulk = %d %s", st, b)
	}
	var r bulk.Response
	decode(t, b, &r)
	if !r.Errors || len(r.Items) != 4 {
		t.Fatalf("errors=%v items=%d", r.Errors, len(r.Items))
	}
	wantStatus := []int{201, 201, 409, 201}
	wantID := []string{"1", "2", "1", "1"}
	for i, it := range r.Items {
		c, ok := it[operationtype.Create]
		if !ok {
			t.Fatalf("item %d has no create: %v", i, it)
		}
		if c.Status != wantStatus[i] || c.Id_ == nil || *c.Id_ != wantID[i] {
			t.Errorf("item %d: status %d id %v, want %d %s", i, c.Status, c.Id_, wantStatus[i], wantID[i])
		}
	}
	if e := r.Items[2][operationtype.Create].Error; e == nil || e.Type != "version_conflict_engine_exception" {
		t.Errorf("conflict item error = %+v", e)
	}
	if got := string(d.Get("test", "1")); got != `{"a":1}` {
		t.Errorf("a conflicting create overwrote the document: %s", got)
	}
	if d.Count("test") != 2 || d.Count("other") != 1 || d.Count("*") != 3 {
		t.Errorf("counts test=%d other=%d all=%d", d.Count("test"), d.Count("other"), d.Count("*"))
	}

	// Shapes: a created item like the specification's, a conflict like the
	// one recorded in go-elasticsearch's own test data.
	created := sub(t, b, "items", 0, "create")
	sameKeys(t, "created item", sub(t, fixtureValue(t, spec+"_global/bulk/examples/response/BulkResponseExample2.yaml"), "items", 2, "create"), created)
	rec, err := os.ReadFile("testdata/esutil/bulk_response_1a.json")
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, "conflict item", sub(t, rec, "items", 1, "create"), sub(t, b, "items", 2, "create"))
	sameKeys(t, "bulk top level", keepTop(t, rec), keepTop(t, b))
}

// keepTop drops everything under items so top-level key sets compare.
func keepTop(t *testing.T, b []byte) []byte {
	var m map[string]json.RawMessage
	decode(t, b, &m)
	m["items"] = json.RawMessage("[]")
	out, _ := json.Marshal(m)
	return out
}

func TestBulkAcceptsSpecificationRequest(t *testing.T) {
	d := New()
	defer d.Close()
	body := string(fixtureValue(t, spec+"_global/bulk/examples/request/BulkRequestExample3.yaml")) + "\n"
	st, _, b := do(t, d, "POST", "/_bulk", body)
	if st != 200 {
		t.Fatalf("bulk = %d %s", st, b)
	}
	var r bulk.Response
	decode(t, b, &r)
	if len(r.Items) != 3 {
		t.Fatalf("%d items for 3 actions", len(r.Items))
	}
	if r.Items[2][operationtype.Create].Status != 201 {
		t.Errorf("create in the example: %+v", r.Items[2])
	}
	if _, ok := r.Items[0][operationtype.Update]; !ok {
		t.Errorf("first item is not answered as an update: %v", r.Items[0])
	}
}

func TestBulkRejectsUnterminatedBody(t *testing.T) {
	d := New()
	defer d.Close()
	st, _, b := do(t, d, "POST", "/_bulk", "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}")
	if st != 400 || !strings.Contains(string(b), "terminated by a newline") {
		t.Errorf("= %d %s", st, b)
	}
}

func TestMappingEnforcement(t *testing.T) {
	d := New()
	defer d.Close()
	if st, _, b := do(t, d, "PUT", "/_index_template/ev", mappingTemplate); st != 200 {
		t.Fatalf("put template = %d %s", st, b)
	}
	body := "{\"create\":{\"_index\":\"ev-1\",\"_id\":\"ok\"}}\n{\"@timestamp\":\"2026-11-01T00:00:00Z\",\"source\":{\"ip\":\"2001:db8::1\"},\"details\":{\"any\":{\"thing\":1}},\"unmapped\":{\"x\":[1,\"a\"]}}\n" +
		"{\"create\":{\"_index\":\"ev-1\",\"_id\":\"badip\"}}\n{\"source\":{\"ip\":\"not-an-ip\"}}\n" +
		"{\"create\":{\"_index\":\"ev-1\",\"_id\":\"objkw\"}}\n{\"user\":{\"name\":{\"first\":\"a\"}}}\n" +
		"{\"create\":{\"_index\":\"ev-1\",\"_id\":\"scalarobj\"}}\n{\"source\":\"10.0.0.1\"}\n" +
		"{\"create\":{\"_index\":\"ev-1\",\"_id\":\"baddate\"}}\n{\"@timestamp\":\"yesterday\"}\n" +
		"{\"create\":{\"_index\":\"ev-1\",\"_id\":\"badjson\"}}\n{\"a\":\n"
	st, _, b := do(t, d, "POST", "/_bulk", body)
	if st != 200 {
		t.Fatalf("bulk = %d %s", st, b)
	}
	var r bulk.Response
	decode(t, b, &r)
	want := []int{201, 400, 400, 400, 400, 400}
	for i, it := range r.Items {
		c := it[operationtype.Create]
		if c.Status != want[i] {
			t.Errorf("item %d (%s): status %d, want %d: %s", i, *c.Id_, c.Status, want[i], sub(t, b, "items", i))
		}
		if want[i] == 400 && (c.Error == nil || c.Error.Type != "document_parsing_exception") {
			t.Errorf("item %d: error %+v", i, c.Error)
		}
	}
	if e := r.Items[1][operationtype.Create].Error; e == nil || e.Reason == nil || !strings.Contains(*e.Reason, "[source.ip] of type [ip]") {
		t.Errorf("ip rejection reason: %+v", e)
	}
	if d.Count("ev-*") != 1 {
		t.Errorf("count = %d, want 1", d.Count("ev-*"))
	}
}

func TestWholeRequestFaultsUseErrorEnvelope(t *testing.T) {
	d := New()
	defer d.Close()
	for _, st := range []int{429, 413, 500, 503} {
		d.FailNext(1, st)
		got, _, b := do(t, d, "POST", "/_bulk", "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n")
		if got != st {
			t.Errorf("FailNext(%d): status %d", st, got)
		}
		var e types.ElasticsearchError
		decode(t, b, &e)
		if e.Status != st || e.ErrorCause.Type == "" || e.ErrorCause.Reason == nil {
			t.Errorf("FailNext(%d): envelope %s", st, b)
		}
		var raw struct {
			Error map[string]json.RawMessage `json:"error"`
		}
		decode(t, b, &raw)
		if _, ok := raw.Error["root_cause"]; !ok {
			t.Errorf("FailNext(%d): no root_cause in %s", st, b)
		}
	}
	if got, _, _ := do(t, d, "POST", "/_bulk", "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n"); got != 200 {
		t.Errorf("after the injected failures: %d", got)
	}

	d.Forbid(true)
	if got, _, b := do(t, d, "POST", "/_bulk", "{}\n"); got != 403 || !strings.Contains(string(b), "security_exception") {
		t.Errorf("Forbid: %d %s", got, b)
	}
	d.Forbid(false)
	d.Unauthorized(true)
	got, h, _ := do(t, d, "GET", "/_ilm/policy/x", "")
	if got != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("Unauthorized: %d %v", got, h)
	}
	d.Unauthorized(false)

	d.SetMaxContentLength(10)
	if got, _, _ := do(t, d, "POST", "/_bulk", "{\"create\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{}\n"); got != 413 {
		t.Errorf("max content length: %d", got)
	}
}

func TestItemFaults(t *testing.T) {
	d := New()
	defer d.Close()
	d.FailItem("x", 429, 503)
	d.SetReadOnly("ro", true)
	d.SetClosed("closed", true)
	body := "{\"create\":{\"_index\":\"a\",\"_id\":\"x\"}}\n{}\n{\"create\":{\"_index\":\"ro\",\"_id\":\"y\"}}\n{}\n{\"create\":{\"_index\":\"closed\",\"_id\":\"z\"}}\n{}\n"
	want := [][]string{
		{"429:es_rejected_execution_exception", "403:cluster_block_exception", "400:index_closed_exception"},
		{"503:unavailable_shards_exception", "403:cluster_block_exception", "400:index_closed_exception"},
		{"201:", "403:cluster_block_exception", "400:index_closed_exception"},
	}
	for round, w := range want {
		_, _, b := do(t, d, "POST", "/_bulk", body)
		var r bulk.Response
		decode(t, b, &r)
		for i, it := range r.Items {
			c := it[operationtype.Create]
			got := strings.TrimSpace(strings.Join([]string{itoa(c.Status), ":"}, ""))
			if c.Error != nil {
				got += c.Error.Type
			}
			if got != w[i] {
				t.Errorf("round %d item %d: %s, want %s", round, i, got, w[i])
			}
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestSetDownClosesConnections(t *testing.T) {
	d := New()
	defer d.Close()
	d.SetDown(true)
	_, err := http.Post(d.URL()+"/_bulk", "application/json", strings.NewReader("{}\n"))
	if err == nil {
		t.Fatal("request to a down double succeeded")
	}
	d.SetDown(false)
	if st, _, _ := do(t, d, "GET", "/", ""); st != 200 {
		t.Errorf("after outage: %d", st)
	}
}

func TestAdminAPIsDecodeWithTypedResponses(t *testing.T) {
	// The specification's examples are Elasticsearch 9's, read with
	// ?human=true.
	d := NewWith(Options{Version: "9.1.0"})
	defer d.Close()

	// ILM: the specification's request, answered as in its response.
	pol := fixtureValue(t, spec+"ilm/put_lifecycle/examples/request/PutLifecycleRequestExample1.yaml")
	st, _, b := do(t, d, "PUT", "/_ilm/policy/my_policy", string(pol))
	if st != 200 {
		t.Fatalf("put policy = %d %s", st, b)
	}
	var pr putlifecycle.Response
	decode(t, b, &pr)
	if !pr.Acknowledged {
		t.Error("put policy not acknowledged")
	}
	sameKeys(t, "put policy", fixtureValue(t, spec+"ilm/put_lifecycle/examples/response/PutLifecycleResponseExample1.yaml"), b)
	_, _, b = do(t, d, "GET", "/_ilm/policy/my_policy", "")
	var gl getlifecycle.Response
	decode(t, b, &gl)
	if lc, ok := gl["my_policy"]; !ok || lc.Version != 1 || lc.Policy.Phases.Delete == nil {
		t.Errorf("get policy decoded as %+v", gl)
	}
	fix := fixtureValue(t, spec+"ilm/get_lifecycle/examples/response/GetLifecycleResponseExample1.yaml")
	sameKeys(t, "get policy (top)", keepPolicyTop(t, fix, "my_policy"), keepPolicyTop(t, b, "my_policy"))
	if st, _, _ := do(t, d, "GET", "/_ilm/policy/nope", ""); st != 404 {
		t.Errorf("missing policy: %d", st)
	}

	// Index template: put the one the specification's GET example shows.
	if st, _, b := do(t, d, "PUT", "/_component_template/my-component-template", `{"template":{"settings":{"number_of_shards":1}}}`); st != 200 {
		t.Fatalf("put component = %d %s", st, b)
	}
	it := `{"index_patterns":["logs-*"],"template":{"settings":{"index":{"number_of_shards":"1","number_of_replicas":"1"}},"mappings":{"properties":{"@timestamp":{"type":"date"},"message":{"type":"text"}}}},"composed_of":["my-component-template"],"priority":200,"version":1,"_meta":{"description":"my custom index template"}}`
	if st, _, b := do(t, d, "PUT", "/_index_template/my-index-template", it); st != 200 {
		t.Fatalf("put index template = %d %s", st, b)
	}
	_, _, b = do(t, d, "GET", "/_index_template/my-index-template?human=true", "")
	var gi getindextemplate.Response
	decode(t, b, &gi)
	if len(gi.IndexTemplates) != 1 || gi.IndexTemplates[0].Name != "my-index-template" || gi.IndexTemplates[0].IndexTemplate.Priority == nil {
		t.Errorf("get index template decoded as %+v", gi)
	}
	sameKeys(t, "get index template",
		fixtureValue(t, spec+"indices/get_index_template/examples/200_response/GetIndexTemplateResponseExample1.yaml"), b)

	_, _, b = do(t, d, "GET", "/_component_template/my-component-template", "")
	var gc getcomponenttemplate.Response
	decode(t, b, &gc)
	if len(gc.ComponentTemplates) != 1 {
		t.Errorf("get component template decoded as %+v", gc)
	}
	if !strings.Contains(string(b), `"number_of_shards":"1"`) {
		t.Errorf("settings not echoed as a node does (nested under index, strings): %s", b)
	}
	if st, _, b := do(t, d, "PUT", "/_index_template/broken", `{"index_patterns":["x-*"],"composed_of":["nope"]}`); st != 400 {
		t.Errorf("template with a missing component: %d %s", st, b)
	}
}

func keepPolicyTop(t *testing.T, b []byte, name string) []byte {
	var m map[string]map[string]json.RawMessage
	decode(t, b, &m)
	p := m[name]
	p["policy"] = json.RawMessage("{}")
	out, _ := json.Marshal(p)
	return out
}

func TestCountSearchGetMatchFixtures(t *testing.T) {
	d := New()
	defer d.Close()
	body := "{\"create\":{\"_index\":\"my-index-000001\",\"_id\":\"0\"}}\n{\"user\":{\"id\":\"kimchy\"},\"source\":{\"ip\":\"127.0.0.1\"}}\n" +
		"{\"create\":{\"_index\":\"my-index-000001\",\"_id\":\"1\"}}\n{\"user\":{\"id\":\"other\"}}\n"
	if st, _, b := do(t, d, "POST", "/_bulk", body); st != 200 {
		t.Fatalf("bulk %d %s", st, b)
	}
	q := string(fixtureValue(t, spec+"_global/count/examples/request/CountRequestExample1.yaml"))
	_, _, b := do(t, d, "POST", "/my-index-000001/_count", q)
	var cr count.Response
	decode(t, b, &cr)
	if cr.Count != 1 {
		t.Errorf("count = %d, want 1", cr.Count)
	}
	sameKeys(t, "count", fixtureValue(t, spec+"_global/count/examples/200_response/CountResponseExample1.yaml"), b)

	q = string(fixtureValue(t, spec+"_global/search/examples/request/SearchRequestExample1.yaml"))
	_, _, b = do(t, d, "POST", "/my-index-000001/_search", q)
	var sr search.Response
	decode(t, b, &sr)
	if sr.Hits.Total == nil || sr.Hits.Total.Value != 1 || len(sr.Hits.Hits) != 1 || *sr.Hits.Hits[0].Id_ != "0" {
		t.Errorf("search = %s", b)
	}
	fix := fixtureValue(t, spec+"_global/search/examples/200_response/SearchResponseExample1.yaml")
	sameKeys(t, "search (without _source)", dropSource(t, fix), dropSource(t, b))

	_, _, b = do(t, d, "GET", "/my-index-000001/_doc/0", "")
	var gr get.Response
	decode(t, b, &gr)
	if !gr.Found || !bytes.Contains(gr.Source_, []byte("kimchy")) {
		t.Errorf("get = %s", b)
	}
	if st, _, _ := do(t, d, "GET", "/my-index-000001/_doc/none", ""); st != 404 {
		t.Errorf("get missing = %d", st)
	}
}

func dropSource(t *testing.T, b []byte) []byte {
	var m map[string]any
	decode(t, b, &m)
	for _, h := range m["hits"].(map[string]any)["hits"].([]any) {
		delete(h.(map[string]any), "_source")
	}
	out, _ := json.Marshal(m)
	return out
}

// TestGoElasticsearchClientWorks proves the official client accepts the
// double (its product check reads X-Elastic-Product).
func TestGoElasticsearchClientWorks(t *testing.T) {
	d := New()
	defer d.Close()
	c, err := es.NewTypedClient(es.Config{Addresses: []string{d.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := c.Info().Do(ctx)
	if err != nil {
		t.Fatalf("info through the typed client: %v", err)
	}
	if r.Version.Int != Version {
		t.Errorf("version %s", r.Version.Int)
	}
	idx := "typed"
	b := c.Bulk()
	if err := b.CreateOp(types.CreateOperation{Index_: &idx, Id_: strPtr("1")}, map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	res, err := b.Do(ctx)
	if err != nil {
		t.Fatalf("bulk through the typed client: %v", err)
	}
	if res.Errors || res.Items[0][operationtype.Create].Status != 201 {
		t.Errorf("typed bulk: %+v", res)
	}
	_, err = c.Get("typed", "missing").Do(ctx)
	var ee *types.ElasticsearchError
	if err != nil && !errors.As(err, &ee) {
		t.Errorf("typed get of a missing doc: %v", err)
	}
}

func strPtr(s string) *string { return &s }

func TestFastAcceptAnswersLikeTheFullPath(t *testing.T) {
	body := "{\"create\":{\"_index\":\"f\",\"_id\":\"1\"}}\n{\"a\":1}\n{\"index\":{\"_index\":\"f\",\"_id\":\"2\"}}\n{\"a\":2}\n"
	full := New()
	defer full.Close()
	_, _, want := do(t, full, "POST", "/_bulk", body)
	fast := New()
	defer fast.Close()
	fast.SetFastAccept(true)
	_, _, got := do(t, fast, "POST", "/_bulk", body)
	var r bulk.Response
	decode(t, got, &r)
	if r.Errors || len(r.Items) != 2 || r.Items[0][operationtype.Create].Status != 201 || r.Items[1][operationtype.Index].Status != 201 {
		t.Errorf("fast answer %s", got)
	}
	sameKeys(t, "fast path", want, got)
	if fast.Count("*") != 0 || fast.Stats().Created != 2 {
		t.Errorf("fast path stored %d, counted %d created", fast.Count("*"), fast.Stats().Created)
	}
}

// A node validates the whole bulk request before it runs any of it
// (BulkRequest.validate collects every item's validation errors): one _id
// over 512 bytes of UTF-8 refuses the request as a whole with 400
// action_request_validation_exception, and nothing is stored.
func TestBulkRefusesOverlongIDAsAWhole(t *testing.T) {
	d := New()
	defer d.Close()
	multi := strings.Repeat("é", 257) // 257 characters, 514 bytes
	long := strings.Repeat("a", 600)
	exact := strings.Repeat("b", 512)
	action := func(id string) string {
		return "{\"create\":{\"_index\":\"ids\",\"_id\":\"" + id + "\"}}\n{\"a\":1}\n"
	}
	st, _, b := do(t, d, "POST", "/_bulk", action("ok")+action(multi)+action(exact)+action(long))
	if st != 400 {
		t.Fatalf("bulk with over-long ids = %d %s", st, b)
	}
	var e types.ElasticsearchError
	decode(t, b, &e)
	want := "Validation Failed: 1: id [" + multi + "] is too long, must be no longer than 512 bytes but was: 514;" +
		"2: id [" + long + "] is too long, must be no longer than 512 bytes but was: 600;"
	if e.Status != 400 || e.ErrorCause.Type != "action_request_validation_exception" || e.ErrorCause.Reason == nil || *e.ErrorCause.Reason != want {
		t.Errorf("envelope %s\nwant reason %s", b, want)
	}
	if len(e.ErrorCause.RootCause) != 1 || e.ErrorCause.RootCause[0].Type != "action_request_validation_exception" {
		t.Errorf("root_cause %+v", e.ErrorCause.RootCause)
	}
	if n := d.Count("*"); n != 0 || len(d.Indices()) != 0 {
		t.Errorf("a refused request stored %d documents in %v", n, d.Indices())
	}
	if st, _, b := do(t, d, "POST", "/_bulk", action(exact)); st != 200 || d.Get("ids", exact) == nil {
		t.Errorf("a 512-byte id = %d %s", st, b)
	}
}

// A node parses the whole body before it runs any action: a malformed line
// after good actions refuses the request and stores nothing.
func TestBulkParsesTheWholeBodyBeforeApplying(t *testing.T) {
	d := New()
	defer d.Close()
	body := "{\"create\":{\"_index\":\"p\",\"_id\":\"1\"}}\n{\"a\":1}\n{\"bogus\":{\"_index\":\"p\",\"_id\":\"2\"}}\n{\"a\":2}\n"
	st, _, b := do(t, d, "POST", "/_bulk", body)
	if st != 400 || !strings.Contains(string(b), "Malformed action/metadata line [3]") {
		t.Errorf("= %d %s", st, b)
	}
	if n := d.Count("*"); n != 0 {
		t.Errorf("%d documents stored from a refused request", n)
	}
}

// EchoRequests stands in for a misconfigured or hostile proxy that repeats
// the request, credentials included, in its error answer.
func TestEchoRequests(t *testing.T) {
	d := New()
	defer d.Close()
	d.EchoRequests(http.StatusBadGateway, false)
	req, _ := http.NewRequest("POST", d.URL()+"/_bulk", strings.NewReader("{\"create\":{}}\n{}\n"))
	req.Header.Set("Authorization", "Basic c3NwcjpzZWNyZXQ=")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 502 || res.Header.Get("X-Elastic-Product") != "" ||
		!strings.Contains(string(b), "Authorization: Basic c3NwcjpzZWNyZXQ=") || !strings.Contains(string(b), "{\"create\":{}}") {
		t.Errorf("plain echo = %d %v %s", res.StatusCode, res.Header, b)
	}

	d.EchoRequests(http.StatusUnauthorized, true)
	req, _ = http.NewRequest("GET", d.URL()+"/", nil)
	req.Header.Set("Authorization", "ApiKey a2V5")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	var e types.ElasticsearchError
	decode(t, b, &e)
	if res.StatusCode != 401 || e.Status != 401 || res.Header.Get("X-Elastic-Product") != "Elasticsearch" || e.ErrorCause.Reason == nil || !strings.Contains(*e.ErrorCause.Reason, "Authorization: ApiKey a2V5") {
		t.Errorf("envelope echo = %d %s", res.StatusCode, b)
	}

	d.EchoRequests(0, false)
	if st, _, b := do(t, d, "GET", "/", ""); st != 200 {
		t.Errorf("after the echo is off: %d %s", st, b)
	}
}

// A user without the monitor cluster privilege (a writer) is refused the
// node's banner with 403, after being authenticated.
func TestForbidInfo(t *testing.T) {
	d := New()
	defer d.Close()
	d.ForbidInfo(true)
	st, _, b := do(t, d, "GET", "/", "")
	var e types.ElasticsearchError
	decode(t, b, &e)
	if st != 403 || e.ErrorCause.Type != "security_exception" || e.ErrorCause.Reason == nil ||
		!strings.Contains(*e.ErrorCause.Reason, "action [cluster:monitor/main] is unauthorized") {
		t.Errorf("GET / = %d %s", st, b)
	}
	if st, _, b := do(t, d, "POST", "/_bulk", "{\"create\":{\"_index\":\"w\",\"_id\":\"1\"}}\n{}\n"); st != 200 {
		t.Errorf("bulk while only the banner is forbidden = %d %s", st, b)
	}
	d.ForbidInfo(false)
	if st, _, _ := do(t, d, "GET", "/", ""); st != 200 {
		t.Errorf("GET / after ForbidInfo(false) = %d", st)
	}
}
