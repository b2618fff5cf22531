package esdouble

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Proxy is a fault-injecting reverse proxy in front of a real node, for
// the faults a node does not make on demand: whole requests answered 429
// or 5xx, bulk items answered 429 although the node stored them (a lost
// acknowledgement), connections refused or reset after the node did the
// work, and slow answers. Its methods are safe for concurrent use.
type Proxy struct {
	srv *httptest.Server
	rp  *httputil.ReverseProxy

	mu         sync.Mutex
	failStatus int
	failCount  int
	resetCount int
	down       bool
	delay      time.Duration
	itemFault  func() bool
	wantAuth   string
	stats      ProxyStats
}

// ProxyStats counts what the proxy did.
type ProxyStats struct {
	Requests  int // requests received
	Forwarded int // requests passed to the node
	Failed    int // requests answered with an injected status
	Reset     int // connections reset after the node answered
	ItemFails int // bulk items rewritten to 429
}

// NewProxy starts a proxy on a loopback address in front of target (a
// node's URL).
func NewProxy(target string) *Proxy {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	p := &Proxy{rp: httputil.NewSingleHostReverseProxy(u)}
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	p.rp.ModifyResponse = p.modify
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.Start()
	return p
}

// URL is the proxy's address.
func (p *Proxy) URL() string { return p.srv.URL }

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// FailNext answers the next n _bulk requests with status and the
// Elasticsearch error envelope, without passing them on.
func (p *Proxy) FailNext(n, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failCount, p.failStatus = n, status
}

// ResetAfterNext passes the next n _bulk requests to the node, then resets
// the client's connection instead of answering: the documents are stored,
// the client does not know.
func (p *Proxy) ResetAfterNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetCount = n
}

// SetDown closes every connection at once while down.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.srv.CloseClientConnections()
	}
}

// SetDelay holds every answer back for d (0: none).
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// SetItemFaults rewrites each bulk item the node answered 201 to a 429
// when f returns true (nil: none).
func (p *Proxy) SetItemFaults(f func() bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.itemFault = f
}

// RequireAuthorization answers 401, as a node with security does, to every
// request without exactly this Authorization header value.
func (p *Proxy) RequireAuthorization(value string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wantAuth = value
}

// Stats returns the counters.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.stats.Requests++
	down, delay, wantAuth := p.down, p.delay, p.wantAuth
	bulk := r.Method == http.MethodPost && (r.URL.Path == "/_bulk" || len(r.URL.Path) > 6 && r.URL.Path[len(r.URL.Path)-6:] == "/_bulk")
	fail, reset := 0, false
	if bulk && p.failCount > 0 {
		p.failCount--
		fail = p.failStatus
		p.stats.Failed++
	} else if bulk && p.resetCount > 0 {
		p.resetCount--
		reset = true
	}
	p.mu.Unlock()

	if down {
		hijackClose(w)
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if wantAuth != "" && r.Header.Get("Authorization") != wantAuth {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		writeError(w, http.StatusUnauthorized, "security_exception", "unable to authenticate user for REST request ["+r.URL.Path+"]")
		return
	}
	if fail != 0 {
		_, _ = io.Copy(io.Discard, r.Body)
		typ, reason := statusType(fail)
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		writeError(w, fail, typ, reason)
		return
	}
	p.mu.Lock()
	p.stats.Forwarded++
	p.mu.Unlock()
	if reset {
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, r)
		p.mu.Lock()
		p.stats.Reset++
		p.mu.Unlock()
		resetConn(w)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// modify rewrites bulk items to 429 as SetItemFaults says.
func (p *Proxy) modify(res *http.Response) error {
	p.mu.Lock()
	f := p.itemFault
	p.mu.Unlock()
	if f == nil || res.StatusCode != http.StatusOK || res.Request.Method != http.MethodPost ||
		len(res.Request.URL.Path) < 6 || res.Request.URL.Path[len(res.Request.URL.Path)-6:] != "/_bulk" {
		return nil
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return err
	}
	var ans struct {
		Errors bool                                    `json:"errors"`
		Took   *int                                    `json:"took,omitempty"`
		Items  []map[string]map[string]json.RawMessage `json:"items"`
	}
	if json.Unmarshal(body, &ans) == nil {
		_, reason := statusType(http.StatusTooManyRequests)
		rejected, _ := json.Marshal(errorCause{Type: "es_rejected_execution_exception", Reason: reason})
		for _, it := range ans.Items {
			for _, v := range it {
				if string(v["status"]) == "201" && f() {
					v["status"], v["error"] = json.RawMessage("429"), rejected
					ans.Errors = true
					p.mu.Lock()
					p.stats.ItemFails++
					p.mu.Unlock()
				}
			}
		}
		if b, err := json.Marshal(ans); err == nil {
			body = b
		}
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	res.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// resetConn closes the client's connection with a TCP reset.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
