package bulktest

import (
	"context"
	"net/http"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// HTTPClient is a bulk.Client of plain net/http against base (a node's or
// a double's URL), for tests of the core without an engine's client.
func HTTPClient(base string) bulk.Client { return httpClient{base: strings.TrimSuffix(base, "/")} }

type httpClient struct{ base string }

func (c httpClient) Do(ctx context.Context, r bulk.Request) (*http.Response, error) {
	req, err := r.HTTP(ctx, c.base)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

func (httpClient) CloseIdleConnections() {}
