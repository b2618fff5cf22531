package alertindex

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// The tests of this file run against real nodes, one engine at a time.
func TestMain(m *testing.M) { os.Exit(searchnode.Main(m)) }

func TestElasticsearch8AlertsIndex(t *testing.T) { onNode(t, searchnode.ES8) }
func TestOpenSearch2AlertsIndex(t *testing.T)    { onNode(t, searchnode.OpenSearch2) }

// onNode installs the templates, stores alerts once whatever how often
// they are created, and finds exactly the stored ones.
func onNode(t *testing.T, e searchnode.Engine) {
	url := searchnode.Shared(t, e).URL()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ix := &Index{Client: bulktest.HTTPClient(url), Red: secret.NewRedactor(), Prefix: "alertindex-test"}
	log := slog.New(slog.DiscardHandler)
	if changed, err := ix.Setup(ctx, "node", log); err != nil || !changed {
		t.Fatalf("setup: changed %v, %v", changed, err)
	}
	if changed, err := ix.Setup(ctx, "node", log); err != nil || changed {
		t.Fatalf("setup again: changed %v, %v (want no change)", changed, err)
	}
	all := samples()
	for i := range all {
		all[i].ID = detect.AlertID(all[i].RuleID, all[i].KeyField, "x")
	}
	// Before any index exists, nothing is stored.
	if got, err := ix.Stored(ctx, all); err != nil || len(got) != 0 {
		t.Fatalf("stored before create: %v, %v", got, err)
	}
	if err := ix.Create(ctx, all[:3]); err != nil {
		t.Fatal(err)
	}
	if err := ix.Create(ctx, all[:4]); err != nil { // three conflicts, one new
		t.Fatalf("create again: %v", err)
	}
	got, err := ix.Stored(ctx, all)
	if err != nil || len(got) != 4 {
		t.Fatalf("stored %v, %v: want the 4 created", got, err)
	}
	for _, a := range all[:4] {
		if !got[a.ID] {
			t.Errorf("%s not found", a.ID)
		}
	}
	// The template applied: source.ip is an ip, not dynamic text.
	res, err := ix.Client.Do(ctx, bulk.Request{Method: http.MethodGet, Path: "/alertindex-test-2026.11/_mapping/field/source.ip"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b [4096]byte
	n, _ := res.Body.Read(b[:])
	if res.StatusCode != 200 || !containsAll(string(b[:n]), `"type":"ip"`) {
		t.Errorf("mapping %d %s", res.StatusCode, b[:n])
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
