package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// TestSearchQuery checks the store query of each filter: case-insensitive
// terms where Match folds case, the period widened to whole milliseconds.
func TestSearchQuery(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
	cases := []struct {
		q    Query
		want []string // in the JSON of the query
		not  []string
	}{
		{Query{}, []string{`"must_not":[{"term":{"event.kind":"alert"}}]`}, []string{`"range"`, `"filter"`}},
		{Query{From: at("2026-11-02T08:00:00.1234567Z"), To: at("2026-11-02T09:00:00.0001Z")},
			[]string{`"gte":"2026-11-02T08:00:00.123Z"`, `"lt":"2026-11-02T09:00:00.001Z"`}, nil},
		{Query{To: at("2026-11-02T09:00:00Z")}, []string{`"lt":"2026-11-02T09:00:00.000Z"`}, []string{`"gte"`}},
		{Query{Tenants: []string{"t1"}}, []string{`{"terms":{"cloud.account.id":["t1"]}}`}, []string{`case_insensitive`}},
		{Query{Domains: []string{"Contoso.example"}}, []string{
			`{"term":{"user.target.domain":{"case_insensitive":true,"value":"Contoso.example"}}}`,
			`"must_not":[{"exists":{"field":"user.target.domain"}}]`,
			`{"term":{"user.domain":{"case_insensitive":true,"value":"Contoso.example"}}}`}, nil},
		{Query{Groups: []string{"Help Desk"}}, []string{
			`{"terms":{"user.target.group.id":["Help Desk"]}}`,
			`{"term":{"user.target.group.name":{"case_insensitive":true,"value":"Help Desk"}}}`}, nil},
		{Query{Users: []string{"Ada@x"}}, []string{
			`{"term":{"user.target.name":{"case_insensitive":true,"value":"Ada@x"}}}`, `{"terms":{"user.target.id":["Ada@x"]}}`,
			`{"term":{"user.name":{"case_insensitive":true,"value":"Ada@x"}}}`, `{"terms":{"user.id":["Ada@x"]}}`}, nil},
		{Query{Actions: []string{"password-reset"}, Outcomes: []string{"failure"}}, []string{
			`{"terms":{"event.action":["password-reset"]}}`, `{"terms":{"event.outcome":["failure"]}}`}, nil},
	}
	for i, c := range cases {
		b, err := json.Marshal(searchQuery(c.q))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("case %d: %s not in %s", i, w, b)
			}
		}
		for _, w := range c.not {
			if strings.Contains(string(b), w) {
				t.Errorf("case %d: %s in %s", i, w, b)
			}
		}
	}
}

// TestOpen checks which reader Open returns, and that the address in a
// manifest carries no credentials.
func TestOpen(t *testing.T) {
	cfg := config.Default()
	cfg.Output.File.Enabled = false
	if _, err := Open(cfg, nil); err != ErrNoStore {
		t.Errorf("nothing configured: %v", err)
	}
	cfg.Output.OpenSearch.Enabled = true
	cfg.Output.OpenSearch.Addresses = []string{"https://reader:s3cret@node1.example:9200", "https://node2.example:9200"}
	cfg.Output.OpenSearch.Index.Prefix = "audit"
	r, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Describe(); got.Kind != KindOpenSearch || got.Index != "audit-*" || got.Address != "https://node1.example:9200,https://node2.example:9200" {
		t.Errorf("OpenSearch: %+v", got)
	}
	cfg.Output.Elasticsearch.Enabled = true
	cfg.Output.Elasticsearch.Addresses = []string{"https://es.example:9200"}
	cfg.Output.Elasticsearch.APIKey = secret.New("a2V5OnNlY3JldA==")
	r, err = Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Describe(); got.Kind != KindElasticsearch || got.Index != "entra-sspr-*" || got.Address != "https://es.example:9200" {
		t.Errorf("Elasticsearch (before OpenSearch): %+v", got)
	}
	if r, err := Open(cfg, []string{"eventstore_test.go"}); err != nil || r.Describe().Kind != "files" {
		t.Errorf("inputs: %v %v", r, err)
	}
}

// fakeStore answers a Search as a node does, from pages prepared in the
// node's order (by millisecond, not by the full time), and records the
// requests.
type fakeStore struct {
	pages    [][]string // _source of each hit, per page
	requests []string
	next     int
}

func (f *fakeStore) Do(_ context.Context, r bulk.Request) (*http.Response, error) {
	f.requests = append(f.requests, r.Method+" "+r.Path)
	body := `{}`
	switch {
	case strings.Contains(r.Path, "/_pit?"):
		body = `{"id":"pit-1"}`
	case r.Path == "/_search":
		var hits []string
		if f.next < len(f.pages) {
			for i, src := range f.pages[f.next] {
				hits = append(hits, fmt.Sprintf(`{"_id":"%d","_source":%s,"sort":[%d]}`, i, src, i))
			}
		}
		f.next++
		body = `{"pit_id":"pit-2","hits":{"hits":[` + strings.Join(hits, ",") + `]}}`
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}, nil
}

func (f *fakeStore) CloseIdleConnections() {}

// TestSearchScanOrder checks that Scan puts the documents of one
// millisecond in the order of Match's definition (full time, then id),
// hands a document stored twice out once, pages on with search_after,
// and closes the point in time it opened.
func TestSearchScanOrder(t *testing.T) {
	src := func(id, ts string) string {
		return fmt.Sprintf(`{"@timestamp":%q,"event":{"id":%q,"action":"password-reset","outcome":"success"}}`, ts, id)
	}
	f := &fakeStore{pages: [][]string{
		{src("c", "2026-11-02T08:00:00.0019Z"), src("b", "2026-11-02T08:00:00.0011Z")},
		{src("a", "2026-11-02T08:00:00.0011Z"), src("a", "2026-11-02T08:00:00.0011Z")},
		{src("d", "2026-11-02T08:00:00.0021Z")},
	}}
	s := NewSearch(KindElasticsearch, f, "http://node:9200", "entra-sspr-*", secret.NewRedactor())
	s.PageSize = 2
	var got []string
	err := s.Scan(context.Background(), Query{To: time.Date(2026, 11, 2, 8, 0, 0, 2_000_000, time.UTC)}, func(e *ecs.Event) error {
		got = append(got, e.Event.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// d is past To, which the store's millisecond bound lets through.
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("order %v, want a,b,c", got)
	}
	want := []string{"POST /entra-sspr-%2A/_pit?keep_alive=120s", "POST /_search", "POST /_search", "POST /_search", "DELETE /_pit"}
	if strings.Join(f.requests, "|") != strings.Join(want, "|") {
		t.Errorf("requests %q, want %q", f.requests, want)
	}
}

// TestSearchNamesBadDocument checks that a page the reader cannot decode
// fails the scan with the id of the document at fault.
func TestSearchNamesBadDocument(t *testing.T) {
	for name, bad := range map[string]string{
		"wrong type":     `{"@timestamp":"2026-11-02T08:00:00Z","event":{"id":7}}`,
		"bad @timestamp": `{"@timestamp":"yesterday","event":{"id":"x"}}`,
	} {
		good := `{"@timestamp":"2026-11-02T08:00:00Z","event":{"id":"ok"}}`
		f := &fakeStore{pages: [][]string{{good, bad}}}
		s := NewSearch(KindElasticsearch, f, "http://node:9200", "entra-sspr-*", secret.NewRedactor())
		err := s.Scan(context.Background(), Query{}, func(*ecs.Event) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "document 1:") {
			t.Errorf("%s: %v, want the error to name document 1", name, err)
		}
	}
}
