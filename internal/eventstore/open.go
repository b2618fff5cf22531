package eventstore

import (
	"errors"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/opensearch"
)

// ErrNoStore says that there is nothing to read from.
var ErrNoStore = errors.New("no event store to read: give --input FILE... (ECS NDJSON written by the file output), " +
	"or a config with [output.elasticsearch] or [output.opensearch] enabled = true")

// Open returns the reader of the inputs when there are any (ECS NDJSON
// files), else of the config's enabled Elasticsearch output, else of its
// OpenSearch output.
func Open(cfg config.Config, inputs []string) (Reader, error) {
	if len(inputs) > 0 {
		return NewFiles(inputs...)
	}
	if o := cfg.Output.Elasticsearch; o.Enabled {
		c, err := elasticsearch.NewClient(o.Config)
		if err != nil {
			return nil, secret.RedactError(err)
		}
		addr := joinAddresses(o.Addresses)
		if o.CloudID != "" {
			name, _, _ := strings.Cut(o.CloudID, ":")
			addr = "cloud:" + name
		}
		return NewSearch(KindElasticsearch, c, addr, o.Index.Prefix+"-*", elasticsearch.Redactor(o.Config)), nil
	}
	if o := cfg.Output.OpenSearch; o.Enabled {
		c, err := opensearch.NewClient(o.Config)
		if err != nil {
			return nil, secret.RedactError(err)
		}
		return NewSearch(KindOpenSearch, c, joinAddresses(o.Addresses), o.Index.Prefix+"-*", opensearch.Redactor(o.Config)), nil
	}
	return nil, ErrNoStore
}

// joinAddresses lists the node URLs, each without credentials.
func joinAddresses(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = stripCredentials(u)
	}
	return strings.Join(out, ",")
}
