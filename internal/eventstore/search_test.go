package eventstore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
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
		{Query{}, []string{`"match_all"`}, []string{`"range"`}},
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
