package report_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore/storetest"
	"github.com/sspr-exporter/sspr-exporter/internal/report"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/opensearch"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// The tests of this file read from real Elasticsearch and OpenSearch
// nodes, one shared node per engine.
func TestMain(m *testing.M) { os.Exit(searchnode.Main(m)) }

// storeConfig is the exporter's config with the output of engine e at url
// enabled, its indices named after prefix.
func storeConfig(e searchnode.Engine, url, prefix string) config.Config {
	cfg := config.Default()
	cfg.Output.File.Enabled = false
	if e.Elasticsearch() {
		cfg.Output.Elasticsearch.Enabled = true
		cfg.Output.Elasticsearch.Addresses = []string{url}
		cfg.Output.Elasticsearch.Index.Prefix = prefix
	} else {
		cfg.Output.OpenSearch.Enabled = true
		cfg.Output.OpenSearch.Addresses = []string{url}
		cfg.Output.OpenSearch.Index.Prefix = prefix
	}
	return cfg
}

// load installs the output's templates with its own setup, then stores
// docs as the sink does (create, _id = event.id, the index of the
// document's date) and refreshes.
func load(t testing.TB, e searchnode.Engine, url string, cfg config.Config, docs []ecs.Event) {
	t.Helper()
	// The output's own templates, as the test nodes take them (no
	// lifecycle plugin, no match_only_text).
	var prefix, granularity string
	var shipped []bulk.Asset
	var err error
	if e.Elasticsearch() {
		c := cfg.Output.Elasticsearch.Config
		prefix, granularity = c.Index.Prefix, c.Index.Granularity
		shipped, err = elasticsearch.Assets(c)
	} else {
		c := cfg.Output.OpenSearch.Config
		prefix, granularity = c.Index.Prefix, c.Index.Granularity
		shipped, err = opensearch.Assets(c)
	}
	if err != nil {
		t.Fatal(err)
	}
	assets, err := bulktest.NodeAssets(shipped)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range assets {
		if a.Kind == bulk.KindISMPolicy {
			continue
		}
		if st, b := call(t, http.MethodPut, url+a.Path(), a.Body); st != 200 {
			t.Fatalf("%s %s: %d %s", a.Kind, a.Name, st, b)
		}
	}
	var body []byte
	send := func() {
		if len(body) == 0 {
			return
		}
		st, b := call(t, http.MethodPost, url+"/_bulk", body)
		if st != 200 || bytes.Contains(b[:min(len(b), 64)], []byte(`"errors":true`)) {
			t.Fatalf("bulk: %d %.400s", st, b)
		}
		body = body[:0]
	}
	for i := range docs {
		d := &docs[i]
		body = fmt.Appendf(body, `{"create":{"_index":%q,"_id":%q}}`+"\n", bulk.IndexName(prefix, granularity, d.Time), d.Event.ID)
		body = append(d.AppendJSON(body), '\n')
		if len(body) > 4<<20 {
			send()
		}
	}
	send()
	call(t, http.MethodPost, url+"/"+prefix+"-*/_refresh", nil)
}

// call sends one request with a JSON (or, to _bulk, NDJSON) body.
func call(t testing.TB, method, url string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if strings.HasSuffix(url, "/_bulk") {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// many returns n password-reset documents over a few days, many sharing a
// millisecond (with different sub-millisecond parts), for paging and
// ordering past the 10,000-hit window.
func many(t testing.TB, n int) []ecs.Event {
	var tmpl ecs.Event
	for _, d := range storetest.Corpus(t) {
		if d.Event.Action == "password-reset" {
			tmpl = d
			break
		}
	}
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	docs := make([]ecs.Event, n)
	for i := range docs {
		d := tmpl
		// 1,000 documents per 10 minutes; each three share a millisecond.
		d.Time = start.Add(time.Duration(i/3)*1800*time.Millisecond + time.Duration(i%3)*100*time.Nanosecond)
		d.Timestamp = d.Time.Format(time.RFC3339Nano)
		d.Event.ID = fmt.Sprintf("SSPR_bulk_%07d", (i*7919)%n)
		d.Entra.SSPR.Flow.ID = fmt.Sprintf("flow-%d", i/2)
		if i%5 == 0 {
			d.Event.Outcome = "failure"
		} else {
			d.Event.Outcome = "success"
		}
		d.User.Target.Name = fmt.Sprintf("user%d@%s", i%97, []string{"contoso.example", "Fabrikam.example"}[i%2])
		d.User.Target.Domain = []string{"contoso.example", "Fabrikam.example"}[i%2]
		docs[i] = d
	}
	return docs
}

// filterCases are the query filters the parity test runs every report with.
func filterCases(docs []ecs.Event) map[string]eventstore.Query {
	// Bounds inside a millisecond, taken from documents, so that the
	// store's millisecond precision is tested at both ends.
	from, to := docs[len(docs)/4].Time, docs[3*len(docs)/4].Time
	cases := map[string]eventstore.Query{
		"all":            period,
		"tenant":         {From: period.From, To: period.To, Tenants: []string{docs[0].Cloud.Account.ID}},
		"other-tenant":   {From: period.From, To: period.To, Tenants: []string{"00000000-0000-0000-0000-000000000000"}},
		"domain-case":    {From: period.From, To: period.To, Domains: []string{"CONTOSO.example"}},
		"group-name":     {From: period.From, To: period.To, Groups: []string{"sspr users"}},
		"group-id":       {From: period.From, To: period.To, Groups: []string{"0b7c6d52-0000-4000-8000-000000000001"}},
		"user-case":      {From: period.From, To: period.To, Users: []string{"Ada.Lovelace@Contoso.Example"}},
		"outcome-fail":   {From: period.From, To: period.To, Outcomes: []string{"failure"}},
		"outcome-ok":     {From: period.From, To: period.To, Outcomes: []string{"success"}},
		"sub-ms-period":  {From: from, To: to},
		"combined":       {From: period.From, To: period.To, Domains: []string{"contoso.example"}, Users: []string{"bo.lindqvist@contoso.example", "chen.wei@contoso.example"}, Outcomes: []string{"failure"}},
		"group-and-user": {From: period.From, To: period.To, Groups: []string{"finance"}, Users: []string{"lee.tanaka6@contoso.example"}},
	}
	return cases
}

// TestQueryParity loads the corpus into a node of each engine and into
// NDJSON, and checks that every report gives the same JSON from both
// readers under every filter; then the same past 10,000 documents, which
// needs the point-in-time paging.
func TestQueryParity(t *testing.T) {
	corpus := storetest.Corpus(t)
	bulkDocs := many(t, 12_500)
	dir := t.TempDir()
	corpusFile, bulkFile := filepath.Join(dir, "corpus.ndjson"), filepath.Join(dir, "bulk.ndjson")
	storetest.WriteNDJSON(t, corpusFile, corpus)
	storetest.WriteNDJSON(t, bulkFile, bulkDocs)
	files, err := eventstore.NewFiles(corpusFile)
	if err != nil {
		t.Fatal(err)
	}
	bulkFiles, _ := eventstore.NewFiles(bulkFile)
	sorted := append([]ecs.Event(nil), corpus...)
	sortEvents(sorted)
	for _, e := range searchnode.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			url := searchnode.Shared(t, e).URL()
			cfg := storeConfig(e, url, "rp-parity")
			load(t, e, url, cfg, corpus)
			store, err := eventstore.Open(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			src := store.Describe()
			if src.Address != url || src.Index != "rp-parity-*" {
				t.Errorf("Describe = %+v", src)
			}
			for name, q := range filterCases(sorted) {
				for _, rep := range report.Names() {
					spec := report.Spec{Name: rep, Query: q, Format: "json"}
					want, wm := generate(t, files, spec)
					got, gm := generate(t, store, spec)
					if !bytes.Equal(got, want) {
						t.Errorf("%s %s: the store's report differs from the files':\n%s", rep, name, firstDiff(string(want), string(got)))
					}
					if wm.Rows != gm.Rows {
						t.Errorf("%s %s: %d rows from the store, %d from the files", rep, name, gm.Rows, wm.Rows)
					}
				}
			}

			bcfg := storeConfig(e, url, "rp-many")
			load(t, e, url, bcfg, bulkDocs)
			bstore, _ := eventstore.Open(bcfg, nil)
			q := eventstore.Query{From: bulkDocs[0].Time.Add(-time.Hour), To: bulkDocs[len(bulkDocs)-1].Time.Add(time.Hour)}
			for _, rep := range []string{"resets", "failed-resets", "flows", "summary"} {
				spec := report.Spec{Name: rep, Query: q, Format: "json"}
				want, wm := generate(t, bulkFiles, spec)
				got, gm := generate(t, bstore, spec)
				if !bytes.Equal(got, want) {
					t.Errorf("%s over %d documents: the store's report differs from the files':\n%s", rep, len(bulkDocs), firstDiff(string(want), string(got)))
				}
				if rep == "resets" && (gm.Rows != len(bulkDocs) || wm.Rows != len(bulkDocs)) {
					t.Errorf("resets over %d documents: %d rows from the store, %d from the files", len(bulkDocs), gm.Rows, wm.Rows)
				}
			}
		})
	}
}

func generate(t *testing.T, r eventstore.Reader, spec report.Spec) ([]byte, report.Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := report.Generate(context.Background(), r, spec, &buf, now)
	if err != nil {
		t.Fatalf("%s from %s: %v", spec.Name, r.Describe().Kind, err)
	}
	return buf.Bytes(), m
}

func sortEvents(docs []ecs.Event) {
	for i := 1; i < len(docs); i++ {
		for j := i; j > 0 && eventstore.Less(&docs[j], &docs[j-1]); j-- {
			docs[j], docs[j-1] = docs[j-1], docs[j]
		}
	}
}

// TestStoreErrors checks what a store that is not there, or an index
// pattern that matches nothing, gives.
func TestStoreErrors(t *testing.T) {
	cfg := config.Default()
	cfg.Output.File.Enabled = false
	if _, err := eventstore.Open(cfg, nil); err == nil || !strings.Contains(err.Error(), "[output.elasticsearch]") {
		t.Errorf("no store: %v", err)
	}
	cfg.Output.Elasticsearch.Enabled = true
	cfg.Output.Elasticsearch.Addresses = []string{"http://127.0.0.1:1"}
	cfg.Output.Elasticsearch.Username = "reader"
	cfg.Output.Elasticsearch.Password = secret.New("hunter2-secret")
	r, err := eventstore.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = report.Generate(context.Background(), r, report.Spec{Name: "resets", Query: period, Format: "csv"}, &buf, now)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable store: %v", err)
	}
}
