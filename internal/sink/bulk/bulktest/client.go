package bulktest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// HTTPClient is a bulk.Client of plain net/http against base (a node's or
// a double's URL), for tests of the core without an engine's client.
func HTTPClient(base string) bulk.Client { return httpClient{base: strings.TrimSuffix(base, "/")} }

type httpClient struct{ base string }

func (c httpClient) Do(ctx context.Context, r bulk.Request) (*http.Response, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.base+r.Path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return http.DefaultClient.Do(req)
}

func (httpClient) CloseIdleConnections() {}
