package elasticsearch

import (
	"context"
	"fmt"
	"net/http"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// client is the bulk.Client of go-elasticsearch: the nodes and
// credentials of the config, TLS as configured, the client's own retries
// off (the sink's policy applies) and its product check on.
type client struct {
	es *es.Client
	tr *bulk.Transport
}

var _ bulk.Client = client{}

func newClient(cfg Config) (client, error) {
	tr, err := bulk.NewTransport(cfg.TLS, cfg.Bulk.MaxInFlight, cfg.RequestTimeout)
	if err != nil {
		return client{}, err
	}
	ec := es.Config{
		Addresses:    cfg.Addresses,
		CloudID:      cfg.CloudID,
		Username:     cfg.Username,
		Password:     cfg.Password.Reveal(),
		APIKey:       cfg.APIKey.Reveal(),
		ServiceToken: cfg.BearerToken.Reveal(),
		Transport:    tr,
		DisableRetry: true,
	}
	if cfg.CloudID != "" {
		ec.Addresses = nil
	}
	c, err := es.NewClient(ec)
	if err != nil {
		// The client's messages name addresses and the cloud id, never the
		// credentials, but say nothing more than needed anyway.
		return client{}, fmt.Errorf("elasticsearch client: %w", err)
	}
	return client{es: c, tr: tr}, nil
}

// Do sends r to a node. A 2xx answer without the X-Elastic-Product header
// is an error of the client's: something else answers at the address.
func (c client) Do(ctx context.Context, r bulk.Request) (*http.Response, error) {
	req, err := r.HTTP(ctx, "")
	if err != nil {
		return nil, err
	}
	return c.es.Perform(req)
}

// CloseIdleConnections closes the idle connections to every node.
func (c client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// engine is what the bulk core needs to know of Elasticsearch.
var engine = bulk.Engine{
	Name:             Name,
	RetentionWarning: "elasticsearch: writing into an index older than the ILM retention; ILM deletes these documents at its next run",
	RetentionHint:    "raise ilm.retention_days and run setup before backfilling events this old",
	FromNode:         func(h http.Header, _ bulk.Failure) bool { return isElasticsearch(h) },
}

// isElasticsearch reports whether an answer comes from an Elasticsearch
// node (every answer of a node carries the header), not from a proxy.
func isElasticsearch(h http.Header) bool { return h.Get("X-Elastic-Product") == "Elasticsearch" }

// Redactor knows every credential of cfg in the forms it is configured
// and sent in.
func Redactor(cfg Config) *secret.Redactor {
	vals := []string{cfg.Password.Reveal(), cfg.APIKey.Reveal(), cfg.BearerToken.Reveal()}
	if cfg.Username != "" && !cfg.Password.IsZero() {
		vals = append(vals, cfg.Username+":"+cfg.Password.Reveal())
	}
	return secret.NewRedactor(vals...)
}

// NewClient returns a client of the nodes of cfg with its credentials and
// TLS settings, for the commands that read back what the sink wrote.
func NewClient(cfg Config) (bulk.Client, error) { return newClient(cfg) }
