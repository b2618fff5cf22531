package bulk

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// Request is one HTTP request to the engine: a path below the node's URL
// (with its query), and a JSON or NDJSON body.
type Request struct {
	Method string
	Path   string
	Body   []byte
}

// HTTP is r as an HTTP request to base+r.Path (base "" leaves the node's
// address to the client), with a JSON content type when it has a body.
func (r Request) HTTP(ctx context.Context, base string) (*http.Request, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.Path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Client sends requests to the nodes of one cluster: the engine's own
// client, with its addresses, credentials and TLS settings. Its answers
// are the nodes' answers whatever their status; only a request that got no
// answer is an error. It must not retry: the Sink does.
type Client interface {
	Do(ctx context.Context, r Request) (*http.Response, error)
	// CloseIdleConnections closes the connections no request uses.
	CloseIdleConnections()
}

// Engine is what differs between the engines a Sink writes to.
type Engine struct {
	// Name names the sink in rejections, metrics and logs, and starts its
	// messages: "elasticsearch", "opensearch".
	Name string
	// RetentionWarning is logged, at most once per log interval, when
	// documents go into an index older than the retention; RetentionHint
	// says what to do about it.
	RetentionWarning, RetentionHint string
	// FromNode reports whether a failed answer comes from the engine itself
	// rather than from something in front of it (a proxy's error page), so
	// that a 400 can be pinned on the request's documents.
	FromNode func(h http.Header, f Failure) bool
}
