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
		addr := strings.Join(o.Addresses, ",")
		if o.CloudID != "" {
			name, _, _ := strings.Cut(o.CloudID, ":")
			addr = "cloud:" + name
		}
		r := secret.NewRedactor(o.Password.Reveal(), o.APIKey.Reveal(), o.BearerToken.Reveal())
		r.AddBasic(o.Username, o.Password.Reveal())
		return NewSearch(KindElasticsearch, c, addr, o.Index.Prefix+"-*", r), nil
	}
	if o := cfg.Output.OpenSearch; o.Enabled {
		c, err := opensearch.NewClient(o.Config)
		if err != nil {
			return nil, secret.RedactError(err)
		}
		r := secret.NewRedactor(o.Password.Reveal(), o.BearerToken.Reveal())
		r.AddBasic(o.Username, o.Password.Reveal())
		return NewSearch(KindOpenSearch, c, strings.Join(o.Addresses, ","), o.Index.Prefix+"-*", r), nil
	}
	return nil, ErrNoStore
}
