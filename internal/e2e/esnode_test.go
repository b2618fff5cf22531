package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// esNode is the Elasticsearch of the chaos suite: a real Elasticsearch
// 8.19 node, with a fault proxy in front of it for what a node does not do
// on demand (429 storms, lost acknowledgements, resets, slow answers). The
// exporter talks to the proxy; the checks read the node directly.
type esNode struct {
	node  *searchnode.Node
	proxy *esdouble.Proxy
}

// startESNode starts the node with the exporter's templates installed, as
// far as a test node takes them (bulktest.NodeAssets: no ILM), and the
// proxy, which asks for the API key as a node with security would.
func startESNode(t *testing.T, apiKey string) *esNode {
	t.Helper()
	n := searchnode.Start(t, searchnode.ES8)
	p := esdouble.NewProxy(n.URL())
	t.Cleanup(p.Close)
	p.RequireAuthorization("APIKey " + apiKey) // as go-elasticsearch sends it
	shipped, err := elasticsearch.Assets(elasticsearch.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	assets, err := bulktest.NodeAssets(shipped)
	if err != nil {
		t.Fatal(err)
	}
	ad := bulk.Admin{Name: elasticsearch.Name, Client: bulktest.HTTPClient(n.URL()), Red: secret.NewRedactor()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ad.Install(ctx, assets, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("templates on the node: %v", err)
	}
	return &esNode{node: n, proxy: p}
}

// URL is where the exporter sends its requests: the proxy.
func (e *esNode) URL() string { return e.proxy.URL() }

// counts returns how many documents each event id has across the
// exporter's indices, read from the node: an error while the node is
// down or restarting.
func (e *esNode) counts() (map[string]int, error) {
	if e.node.PID() == 0 {
		return nil, fmt.Errorf("the node is not running")
	}
	return bulktest.CountIDs(e.node.URL(), chaosIndexGlob+"*", 60000)
}
