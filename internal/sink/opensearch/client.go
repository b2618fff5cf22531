package opensearch

import (
	"context"
	"fmt"
	"net/http"

	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// client is the bulk.Client of opensearch-go: the nodes and credentials of
// the config, TLS as configured, and none of the client's own retries,
// node discovery or health checks (the sink's policy applies).
type client struct {
	os *opensearch.Client
	tr *bulk.Transport
}

var _ bulk.Client = client{}

func newClient(cfg Config) (client, error) {
	tr, err := bulk.NewTransport(cfg.TLS, cfg.Bulk.MaxInFlight, cfg.RequestTimeout)
	if err != nil {
		return client{}, err
	}
	noDiscovery := false
	oc := opensearch.Config{
		Addresses:             cfg.Addresses,
		Username:              cfg.Username,
		Password:              cfg.Password.Reveal(),
		Transport:             tr,
		DisableRetry:          true,
		DiscoverNodesOnStart:  &noDiscovery,
		HealthCheckMaxRetries: -1,
		MaxRetryClusterHealth: -1,
	}
	if !cfg.BearerToken.IsZero() {
		oc.Header = http.Header{"Authorization": {"Bearer " + cfg.BearerToken.Reveal()}}
	}
	c, err := opensearch.NewClient(oc)
	if err != nil {
		// The client's messages name addresses, never the credentials.
		return client{}, fmt.Errorf("opensearch client: %w", err)
	}
	return client{os: c, tr: tr}, nil
}

// Do sends r to a node.
func (c client) Do(ctx context.Context, r bulk.Request) (*http.Response, error) {
	req, err := r.HTTP(ctx, "")
	if err != nil {
		return nil, err
	}
	return c.os.Stream(req)
}

// CloseIdleConnections closes the idle connections to every node.
func (c client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// engine is what the bulk core needs to know of OpenSearch.
var engine = bulk.Engine{
	Name: Name,
	RetentionWarning: "opensearch: writing events older than the ISM retention; ISM counts the retention from the index's creation, " +
		"so an index created now keeps them ism.retention_days from today",
	RetentionHint: "see docs/opensearch.md, Retention, before backfilling events this old",
	FromNode:      fromNode,
}

// fromNode reports whether a failed answer is OpenSearch's own: a node
// sends no product header, but its error envelope repeats the HTTP status,
// which a proxy's page does not.
func fromNode(_ http.Header, f bulk.Failure) bool { return f.Envelope }

// Redactor knows every credential of cfg in the forms it is configured
// and sent in.
func Redactor(cfg Config) *secret.Redactor {
	vals := []string{cfg.Password.Reveal(), cfg.BearerToken.Reveal()}
	if cfg.Username != "" && !cfg.Password.IsZero() {
		vals = append(vals, cfg.Username+":"+cfg.Password.Reveal())
	}
	return secret.NewRedactor(vals...)
}

// NewClient returns a client of the nodes of cfg with its credentials and
// TLS settings, for the commands that read back what the sink wrote.
func NewClient(cfg Config) (bulk.Client, error) { return newClient(cfg) }
