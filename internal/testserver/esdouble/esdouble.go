// Package esdouble is an in-process test double of the Elasticsearch HTTP
// API: enough of _bulk, ILM, templates, _count, _search and get-by-id to test
// a client end to end, answering with the shapes real Elasticsearch 8/9
// nodes send, plus a fault-injection API (whole-request failures, per-item
// failures, outages, authorization errors, blocked and closed indices).
package esdouble

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the Elasticsearch version the double reports at GET / unless
// Options.Version says otherwise.
const Version = "8.19.21"

// OpenSearchVersion is the version an OpenSearch double reports.
const OpenSearchVersion = "2.19.6"

// ItemHook decides the fate of one bulk action before the double applies it:
// 0 applies it normally, any other value fails the item with that status and
// the error type Elasticsearch uses for it.
type ItemHook func(action, index, id string) int

// Stats counts what the double has seen.
type Stats struct {
	Requests       int // every HTTP request, failed or not
	BulkRequests   int // _bulk requests that reached bulk processing
	BulkItems      int // actions processed in those requests
	Created        int // items answered 201
	Conflicts      int // items answered 409 version_conflict_engine_exception
	ItemErrors     int // items answered with any other error
	FailedRequests int // requests answered with an injected or auth error
	MaxBulkBytes   int // largest _bulk body received
	AdminPuts      int // ILM or ISM policy and template PUTs
	ISMApplied     int // indices put under an ISM policy by add or change_policy
	MaxInFlight    int // most _bulk requests open at the same time
}

// Double is a running test double. Its methods are safe for concurrent use.
type Double struct {
	srv  *httptest.Server
	opts Options

	mu            sync.Mutex
	indices       map[string]*index
	policies      map[string]*stored
	policiesISM   map[string]*stored
	managed       map[string]string // index -> ISM policy
	components    map[string]*stored
	templates     map[string]*stored
	failStatus    int
	failCount     int
	down          bool
	forbid        bool
	forbidInfo    bool
	unauthorized  bool
	echoStatus    int
	echoEnvelope  bool
	wantAuth      string
	itemHook      ItemHook
	itemFaults    map[string][]int
	maxContent    int
	noAutoCreate  bool
	fastAccept    bool
	stats         Stats
	lastHeaders   http.Header
	seqNo         int64
	uuidCounter   int
	closedIndices map[string]bool
	readOnly      map[string]bool
	inFlight      int
}

type stored struct {
	body     map[string]any
	version  int64
	created  time.Time
	modified time.Time
}

type index struct {
	name    string
	uuid    string
	docs    map[string]json.RawMessage
	order   []string
	mapping map[string]any // {"dynamic":..., "properties":...} or nil for dynamic
}

// Options choose which node the double answers like; the zero value is an
// Elasticsearch cluster with its ILM plugin.
type Options struct {
	// OpenSearch answers as an OpenSearch node: no X-Elastic-Product
	// header, OpenSearch's banner and error types.
	OpenSearch bool
	// NoILM answers the ILM API as a node without the ILM plugin does
	// (400, no handler for the path), like the test nodes.
	NoILM bool
	// ISM serves the Index State Management API of OpenSearch; without it
	// those paths answer as on a node without the plugin.
	ISM bool
	// Version is the engine version reported at GET / (Version or
	// OpenSearchVersion by default); from Elasticsearch 9 on, templates
	// are read with their creation and modification dates.
	Version string
}

// New starts a double of an Elasticsearch cluster on a loopback HTTP
// address.
func New() *Double { return NewWith(Options{}) }

// NewWith starts a double answering as o says on a loopback HTTP address.
func NewWith(o Options) *Double {
	d := newDouble()
	if o.Version == "" {
		o.Version = Version
		if o.OpenSearch {
			o.Version = OpenSearchVersion
		}
	}
	d.opts = o
	d.srv = httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
	d.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	d.srv.Start()
	return d
}

// NewTLS starts a double on a loopback HTTPS address with a self-signed
// certificate (see Certificate).
func NewTLS() *Double {
	d := newDouble()
	d.srv = httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
	// Handshakes a test makes fail on purpose are not worth a log line.
	d.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	d.srv.StartTLS()
	return d
}

func newDouble() *Double {
	return &Double{
		opts:          Options{Version: Version},
		policiesISM:   map[string]*stored{},
		managed:       map[string]string{},
		indices:       map[string]*index{},
		policies:      map[string]*stored{},
		components:    map[string]*stored{},
		templates:     map[string]*stored{},
		itemFaults:    map[string][]int{},
		closedIndices: map[string]bool{},
		readOnly:      map[string]bool{},
	}
}

// NewTLSWithCertificate starts a double on a loopback HTTPS address that
// presents cert (its chain as given, leaf first).
func NewTLSWithCertificate(cert tls.Certificate) *Double {
	d := newDouble()
	d.srv = httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
	d.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	d.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	d.srv.StartTLS()
	return d
}

// URL is the base address of the double.
func (d *Double) URL() string { return d.srv.URL }

// Certificate is the TLS certificate of a double started with NewTLS.
func (d *Double) Certificate() *x509.Certificate { return d.srv.Certificate() }

// Close stops the double.
func (d *Double) Close() { d.srv.Close() }

// FailNext makes the next n _bulk requests fail as a whole with status
// (429, 413, 500, 503...) and the Elasticsearch error envelope.
func (d *Double) FailNext(n, status int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failCount, d.failStatus = n, status
}

// SetDown simulates an outage: while down every connection is closed
// without an answer.
func (d *Double) SetDown(down bool) {
	d.mu.Lock()
	d.down = down
	d.mu.Unlock()
	if down {
		d.srv.CloseClientConnections()
	}
}

// Forbid answers every request but GET / with 403 security_exception, as a
// node does for a user lacking privileges.
func (d *Double) Forbid(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forbid = on
}

// ForbidInfo answers GET / with 403 security_exception, as a node does
// for an authenticated user without the monitor cluster privilege (a
// writer role); other requests are unaffected.
func (d *Double) ForbidInfo(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forbidInfo = on
}

// EchoRequests makes every request fail with status and an answer that
// repeats the request line, its headers (credentials included) and its
// body, as a misconfigured or hostile proxy in front of a node may do. With
// envelope the answer is Elasticsearch's error envelope; without, plain
// text without the X-Elastic-Product header. Status 0 turns it off. A real
// node never answers like this: it is a fault to prove that the client
// keeps credentials out of what it reports.
func (d *Double) EchoRequests(status int, envelope bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.echoStatus, d.echoEnvelope = status, envelope
}

// Unauthorized answers every request with 401 security_exception, as a node
// does for wrong or expired credentials.
func (d *Double) Unauthorized(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unauthorized = on
}

// RequireAuthorization makes every request without exactly this
// Authorization header value fail with 401 ("" accepts anything).
func (d *Double) RequireAuthorization(value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wantAuth = value
}

// SetItemHook installs a hook consulted for every bulk action (nil removes it).
func (d *Double) SetItemHook(h ItemHook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.itemHook = h
}

// FailItem makes the next len(statuses) bulk actions on document id fail
// with those statuses, in order.
func (d *Double) FailItem(id string, statuses ...int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.itemFaults[id] = append(d.itemFaults[id], statuses...)
}

// SetMaxContentLength makes _bulk bodies larger than n bytes fail with 413,
// like http.max_content_length (0 disables the limit).
func (d *Double) SetMaxContentLength(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.maxContent = n
}

// SetAutoCreate controls whether bulk actions create missing indices (on by
// default, like action.auto_create_index).
func (d *Double) SetAutoCreate(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.noAutoCreate = !on
}

// SetReadOnly sets or clears index.blocks.write on an index name: writes
// then fail per item with 403 cluster_block_exception.
func (d *Double) SetReadOnly(name string, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.readOnly[name] = on
}

// SetClosed closes or opens an index name: writes then fail per item with
// 400 index_closed_exception.
func (d *Double) SetClosed(name string, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closedIndices[name] = on
}

// SetFastAccept makes _bulk answer every create/index action 201 without
// storing or validating the document, for client benchmarks.
func (d *Double) SetFastAccept(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fastAccept = on
}

// Stats returns the counters.
func (d *Double) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// LastHeader returns a header of the last request received.
func (d *Double) LastHeader(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastHeaders.Get(name)
}

// Indices lists the index names, sorted.
func (d *Double) Indices() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.indices))
	for n := range d.indices {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Count returns how many documents indices matching the comma-separated
// pattern hold.
func (d *Double) Count(pattern string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ix := range d.matchIndices(pattern) {
		n += len(ix.docs)
	}
	return n
}

// Get returns the _source of a document, or nil.
func (d *Double) Get(indexName, id string) json.RawMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ix := d.indices[indexName]; ix != nil {
		return ix.docs[id]
	}
	return nil
}

// IDs returns the document ids of an index in the order they were created.
func (d *Double) IDs(indexName string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ix := d.indices[indexName]; ix != nil {
		return append([]string(nil), ix.order...)
	}
	return nil
}

// Policy returns the stored ILM policy body and its version (0 when absent).
func (d *Double) Policy(name string) (map[string]any, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.policies[name]; s != nil {
		return s.body, s.version
	}
	return nil, 0
}

// Delete removes an ILM policy, index template or component template
// by kind ("ilm", "index_template", "component_template").
func (d *Double) Delete(kind, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch kind {
	case "ilm":
		delete(d.policies, name)
	case "index_template":
		delete(d.templates, name)
	case "component_template":
		delete(d.components, name)
	}
}

func (d *Double) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.stats.Requests++
	d.lastHeaders = r.Header.Clone()
	down, unauthorized, forbid, forbidInfo, wantAuth := d.down, d.unauthorized, d.forbid, d.forbidInfo, d.wantAuth
	echoStatus, echoEnvelope := d.echoStatus, d.echoEnvelope
	d.mu.Unlock()

	if down {
		hijackClose(w)
		return
	}
	ct := "application/json"
	if strings.Contains(r.Header.Get("Accept"), "compatible-with=") {
		ct = "application/vnd.elasticsearch+json;compatible-with=8"
	}
	if d.opts.OpenSearch {
		ct = "application/json; charset=UTF-8"
	} else {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	w.Header().Set("Content-Type", ct)
	if echoStatus != 0 {
		d.countFailed()
		echo(w, r, echoStatus, echoEnvelope)
		return
	}

	if unauthorized || (wantAuth != "" && r.Header.Get("Authorization") != wantAuth) {
		d.countFailed()
		w.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", "ApiKey")
		writeError(w, http.StatusUnauthorized, "security_exception",
			"unable to authenticate user [elastic] for REST request ["+r.URL.Path+"]")
		return
	}
	if forbidInfo && r.URL.Path == "/" {
		d.countFailed()
		writeError(w, http.StatusForbidden, "security_exception",
			"action [cluster:monitor/main] is unauthorized for user [sspr] with effective roles [sspr_writer], this action is granted by the cluster privileges [monitor,manage,all]")
		return
	}
	if forbid && r.URL.Path != "/" {
		d.countFailed()
		writeError(w, http.StatusForbidden, "security_exception",
			fmt.Sprintf("action [%s %s] is unauthorized for user [sspr] with effective roles [sspr_writer]", r.Method, r.URL.Path))
		return
	}

	body, err := io.ReadAll(r.Body)
	if err != nil {
		hijackClose(w)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/_bulk") {
		d.mu.Lock()
		d.inFlight++
		d.stats.MaxInFlight = max(d.stats.MaxInFlight, d.inFlight)
		d.mu.Unlock()
		defer func() {
			d.mu.Lock()
			d.inFlight--
			d.mu.Unlock()
		}()
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		parts = nil
	}
	if fp := r.URL.Query().Get("filter_path"); fp != "" {
		f := &filtered{ResponseWriter: w}
		d.route(f, r, parts, body)
		f.flush(fp)
		return
	}
	d.route(w, r, parts, body)
}

// echo answers with the request itself, see EchoRequests.
func echo(w http.ResponseWriter, r *http.Request, status int, envelope bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\n", r.Method, r.URL.RequestURI(), r.Proto)
	names := make([]string, 0, len(r.Header))
	for n := range r.Header {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, v := range r.Header[n] {
			fmt.Fprintf(&b, "%s: %s\n", n, v)
		}
	}
	body, _ := io.ReadAll(r.Body)
	b.WriteString("\n")
	b.Write(body)
	if envelope {
		typ, _ := statusType(status)
		writeError(w, status, typ, b.String())
		return
	}
	w.Header().Del("X-Elastic-Product")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, b.String())
}

func (d *Double) countFailed() {
	d.mu.Lock()
	d.stats.FailedRequests++
	d.mu.Unlock()
}

func (d *Double) route(w http.ResponseWriter, r *http.Request, p []string, body []byte) {
	m := r.Method
	switch {
	case len(p) == 0 && (m == http.MethodGet || m == http.MethodHead):
		writeJSON(w, 200, d.infoResponse())
	case len(p) >= 1 && p[0] == "_ilm" && d.opts.NoILM, len(p) >= 1 && p[0] == "_plugins" && !d.opts.ISM:
		noHandler(w, r)
	case len(p) >= 2 && p[0] == "_plugins" && p[1] == "_ism":
		d.ism(w, r, p[2:], body)
	case len(p) >= 1 && p[len(p)-1] == "_bulk" && len(p) <= 2 && (m == http.MethodPost || m == http.MethodPut):
		def := ""
		if len(p) == 2 {
			def = p[0]
		}
		d.bulk(w, r, def, body)
	case len(p) == 3 && p[0] == "_ilm" && p[1] == "policy":
		d.admin(w, r, "ilm", p[2], body)
	case len(p) == 2 && p[0] == "_component_template":
		d.admin(w, r, "component_template", p[1], body)
	case len(p) == 2 && p[0] == "_index_template":
		d.admin(w, r, "index_template", p[1], body)
	case len(p) <= 2 && len(p) >= 1 && p[len(p)-1] == "_count":
		d.search(w, r, p, body, true)
	case len(p) <= 2 && len(p) >= 1 && p[len(p)-1] == "_search":
		d.search(w, r, p, body, false)
	case len(p) <= 2 && len(p) >= 1 && p[len(p)-1] == "_refresh":
		writeJSON(w, 200, map[string]any{"_shards": shards(1, 1, 0)})
	case len(p) == 3 && p[1] == "_doc" && (m == http.MethodGet || m == http.MethodHead):
		d.getDoc(w, p[0], p[2])
	default:
		noHandler(w, r)
	}
}

// noHandler answers as a node does a path no module or plugin serves: 400
// with the error as a plain string.
func noHandler(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 400, map[string]string{"error": fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.RequestURI(), r.Method)})
}

func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// errorCause is Elasticsearch's error object; field order follows the node's.
type errorCause struct {
	Type      string      `json:"type"`
	Reason    string      `json:"reason"`
	IndexUUID string      `json:"index_uuid,omitempty"`
	Shard     string      `json:"shard,omitempty"`
	Index     string      `json:"index,omitempty"`
	CausedBy  *errorCause `json:"caused_by,omitempty"`
}

type errorEnvelope struct {
	Error struct {
		RootCause []errorCause `json:"root_cause"`
		errorCause
	} `json:"error"`
	Status int `json:"status"`
}

func writeError(w http.ResponseWriter, status int, typ, reason string) {
	var e errorEnvelope
	e.Error.RootCause = []errorCause{{Type: typ, Reason: reason}}
	e.Error.Type, e.Error.Reason = typ, reason
	e.Status = status
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func shards(total, ok, failed int) map[string]int {
	return map[string]int{"total": total, "successful": ok, "failed": failed}
}

func (d *Double) infoResponse() any {
	if d.opts.OpenSearch {
		return openSearchInfo(d.opts.Version)
	}
	return elasticsearchInfo(d.opts.Version)
}

func openSearchInfo(v string) any {
	type version struct {
		Distribution      string `json:"distribution"`
		Number            string `json:"number"`
		BuildType         string `json:"build_type"`
		BuildHash         string `json:"build_hash"`
		BuildDate         string `json:"build_date"`
		BuildSnapshot     bool   `json:"build_snapshot"`
		LuceneVersion     string `json:"lucene_version"`
		MinWireCompat     string `json:"minimum_wire_compatibility_version"`
		MinIndexCompatVer string `json:"minimum_index_compatibility_version"`
	}
	return struct {
		Name        string  `json:"name"`
		ClusterName string  `json:"cluster_name"`
		ClusterUUID string  `json:"cluster_uuid"`
		Version     version `json:"version"`
		Tagline     string  `json:"tagline"`
	}{
		Name: "esdouble-0", ClusterName: "esdouble", ClusterUUID: "Wk7-OlinQh-iCzSbAa5xbg",
		Version: version{
			Distribution: "opensearch", Number: v, BuildType: "tar",
			BuildHash: "97d3c13bf22a4a72ac11dc503fe44c97662b9161", BuildDate: "2026-07-01T04:27:16.038403104Z",
			LuceneVersion: "9.12.3", MinWireCompat: "7.10.0", MinIndexCompatVer: "7.0.0",
		},
		Tagline: "The OpenSearch Project: https://opensearch.org/",
	}
}

func elasticsearchInfo(v string) any {
	type version struct {
		Number            string `json:"number"`
		BuildFlavor       string `json:"build_flavor"`
		BuildType         string `json:"build_type"`
		BuildHash         string `json:"build_hash"`
		BuildDate         string `json:"build_date"`
		BuildSnapshot     bool   `json:"build_snapshot"`
		LuceneVersion     string `json:"lucene_version"`
		MinWireCompat     string `json:"minimum_wire_compatibility_version"`
		MinIndexCompatVer string `json:"minimum_index_compatibility_version"`
	}
	return struct {
		Name        string  `json:"name"`
		ClusterName string  `json:"cluster_name"`
		ClusterUUID string  `json:"cluster_uuid"`
		Version     version `json:"version"`
		Tagline     string  `json:"tagline"`
	}{
		Name: "esdouble-0", ClusterName: "esdouble", ClusterUUID: "zk-HjQtYQGyL3NFSSu7InA",
		Version: version{
			Number: v, BuildFlavor: "default", BuildType: "tar",
			BuildHash: "2b6a7fed44faa321997703718f07ee0420804b41", BuildDate: "2024-12-11T12:08:05.663969764Z",
			LuceneVersion: "9.12.0", MinWireCompat: "7.17.0", MinIndexCompatVer: "7.0.0",
		},
		Tagline: "You Know, for Search",
	}
}

// statusType is the error type Elasticsearch reports for a status.
func statusType(status int) (string, string) {
	switch status {
	case 400:
		return "document_parsing_exception", "[1:1] failed to parse: injected failure"
	case 401:
		return "security_exception", "unable to authenticate user"
	case 403:
		return "security_exception", "action [indices:data/write/bulk[s]] is unauthorized"
	case 404:
		return "index_not_found_exception", "no such index"
	case 409:
		return "version_conflict_engine_exception", "version conflict, document already exists (current version [1])"
	case 413:
		return "content_too_long_exception", "request content is too large"
	case 429:
		return "es_rejected_execution_exception", "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=1024]"
	case 503:
		return "unavailable_shards_exception", "[entra-sspr][0] primary shard is not active Timeout: [1m]"
	default:
		return "exception", "injected failure"
	}
}

func (d *Double) newUUID() string {
	d.uuidCounter++
	return fmt.Sprintf("eZMQ7DUzT56RLaQc%06dxg", d.uuidCounter)
}

// admin serves PUT and GET of ILM policies, component and index templates.
func (d *Double) admin(w http.ResponseWriter, r *http.Request, kind, name string, body []byte) {
	method := r.Method
	d.mu.Lock()
	defer d.mu.Unlock()
	store := map[string]map[string]*stored{"ilm": d.policies, "component_template": d.components, "index_template": d.templates}[kind]
	switch method {
	case http.MethodPut, http.MethodPost:
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil || v == nil {
			writeError(w, 400, "x_content_parse_exception", "[1:1] failed to parse request body")
			return
		}
		if kind == "ilm" {
			pol, ok := v["policy"].(map[string]any)
			if !ok {
				writeError(w, 400, "x_content_parse_exception", "[1:1] [put_lifecycle_request] policy is required")
				return
			}
			v = pol
		} else if err := normalizeTemplate(kind, v); err != nil {
			writeError(w, 400, "illegal_argument_exception", err.Error())
			return
		}
		if kind == "index_template" {
			if msg := d.checkComposedOf(v); msg != "" {
				writeError(w, 400, "invalid_index_template_exception", msg)
				return
			}
		}
		now := time.Now().UTC()
		s := store[name]
		if s == nil {
			s = &stored{created: now}
			store[name] = s
		}
		s.body, s.modified = v, now
		s.version++
		d.stats.AdminPuts++
		writeJSON(w, 200, map[string]bool{"acknowledged": true})
	case http.MethodGet:
		s := store[name]
		if s == nil {
			reason := map[string]string{
				"ilm":                "Lifecycle policy not found: " + name,
				"component_template": "component template matching [" + name + "] not found",
				"index_template":     "index template matching [" + name + "] not found",
			}[kind]
			writeError(w, 404, "resource_not_found_exception", reason)
			return
		}
		switch kind {
		case "ilm":
			writeJSON(w, 200, map[string]any{name: map[string]any{
				"version":       s.version,
				"modified_date": s.modified.Format("2006-01-02T15:04:05.000Z"),
				"policy":        s.body,
				"in_use_by":     map[string][]string{"indices": {}, "data_streams": {}, "composable_templates": {}},
			}})
		case "component_template":
			writeJSON(w, 200, map[string]any{"component_templates": []any{map[string]any{
				"name": name, "component_template": d.dated(s, r.URL.Query().Get("human") == "true"),
			}}})
		default:
			writeJSON(w, 200, map[string]any{"index_templates": []any{map[string]any{
				"name": name, "index_template": d.dated(s, r.URL.Query().Get("human") == "true"),
			}}})
		}
	case http.MethodDelete:
		delete(store, name)
		writeJSON(w, 200, map[string]bool{"acknowledged": true})
	default:
		writeError(w, 405, "illegal_argument_exception", "method not allowed")
	}
}

// dated is a stored template as a node reads it: from Elasticsearch 9 on
// with its creation and modification times, in milliseconds and, with
// ?human=true, as dates too.
func (d *Double) dated(s *stored, human bool) map[string]any {
	t := make(map[string]any, len(s.body)+4)
	for k, v := range s.body {
		t[k] = v
	}
	if d.opts.OpenSearch || !strings.HasPrefix(d.opts.Version, "9.") {
		return t
	}
	t["created_date_millis"] = s.created.UnixMilli()
	t["modified_date_millis"] = s.modified.UnixMilli()
	if human {
		t["created_date"] = s.created.Format("2006-01-02T15:04:05.000Z")
		t["modified_date"] = s.modified.Format("2006-01-02T15:04:05.000Z")
	}
	return t
}

func (d *Double) checkComposedOf(v map[string]any) string {
	list, _ := v["composed_of"].([]any)
	for _, c := range list {
		name, _ := c.(string)
		if d.components[name] == nil {
			return fmt.Sprintf("index template [x] specifies component templates [%s] that do not exist", name)
		}
	}
	return ""
}

// normalizeTemplate rewrites settings the way a node echoes them: nested
// under "index" with string values.
func normalizeTemplate(kind string, v map[string]any) error {
	tpl, ok := v["template"].(map[string]any)
	if !ok {
		if kind == "component_template" {
			return fmt.Errorf("template is required")
		}
		return nil
	}
	settings, ok := tpl["settings"].(map[string]any)
	if !ok {
		return nil
	}
	flat := map[string]string{}
	flatten("", settings, flat)
	out := map[string]any{}
	for k, val := range flat {
		if !strings.HasPrefix(k, "index.") {
			k = "index." + k
		}
		cur := out
		segs := strings.Split(k, ".")
		for _, s := range segs[:len(segs)-1] {
			next, ok := cur[s].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[s] = next
			}
			cur = next
		}
		cur[segs[len(segs)-1]] = val
	}
	tpl["settings"] = out
	return nil
}

func flatten(prefix string, m map[string]any, out map[string]string) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch x := v.(type) {
		case map[string]any:
			flatten(key, x, out)
		case string:
			out[key] = x
		case float64:
			out[key] = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			out[key] = strconv.FormatBool(x)
		default:
			b, _ := json.Marshal(x)
			out[key] = string(b)
		}
	}
}

func (d *Double) getDoc(w http.ResponseWriter, indexName, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ix := d.indices[indexName]
	if ix == nil {
		writeIndexNotFound(w, indexName)
		return
	}
	src, ok := ix.docs[id]
	if !ok {
		writeJSON(w, 404, map[string]any{"_index": indexName, "_id": id, "found": false})
		return
	}
	writeJSON(w, 200, map[string]any{
		"_index": indexName, "_id": id, "_version": 1, "_seq_no": 0, "_primary_term": 1,
		"found": true, "_source": src,
	})
}

func writeIndexNotFound(w http.ResponseWriter, name string) {
	var e errorEnvelope
	c := errorCause{Type: "index_not_found_exception", Reason: "no such index [" + name + "]", IndexUUID: "_na_", Index: name}
	e.Error.RootCause = []errorCause{c}
	e.Error.errorCause = c
	e.Status = 404
	writeJSON(w, 404, e)
}

// matchIndices resolves a comma-separated list of names and * patterns.
func (d *Double) matchIndices(pattern string) []*index {
	if pattern == "" || pattern == "_all" {
		pattern = "*"
	}
	seen := map[string]bool{}
	var out []*index
	for _, p := range strings.Split(pattern, ",") {
		names := make([]string, 0, len(d.indices))
		for n := range d.indices {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if !seen[n] && globMatch(p, n) {
				seen[n] = true
				out = append(out, d.indices[n])
			}
		}
	}
	return out
}

// globMatch matches Elasticsearch index patterns. Index names hold no '/',
// so path.Match's '*' (any run of non-'/' bytes) is Elasticsearch's '*'.
func globMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return ok && err == nil
}

// search serves _count and a small _search: match_all, term, ?q=field:value.
func (d *Double) search(w http.ResponseWriter, r *http.Request, p []string, body []byte, count bool) {
	pattern := ""
	if len(p) == 2 {
		pattern = p[0]
	}
	field, value, err := parseQuery(r.URL.Query().Get("q"), body)
	if err != nil {
		writeError(w, 400, "parsing_exception", err.Error())
		return
	}
	size := 10
	if s := r.URL.Query().Get("size"); s != "" {
		size, _ = strconv.Atoi(s)
	}
	var sz struct {
		Size *int `json:"size"`
	}
	if len(body) > 0 && json.Unmarshal(body, &sz) == nil && sz.Size != nil {
		size = *sz.Size
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	ixs := d.matchIndices(pattern)
	if len(ixs) == 0 && pattern != "" && !strings.Contains(pattern, "*") {
		writeIndexNotFound(w, pattern)
		return
	}
	type hit struct {
		Index  string          `json:"_index"`
		ID     string          `json:"_id"`
		Score  float64         `json:"_score"`
		Source json.RawMessage `json:"_source"`
	}
	hits := []hit{}
	total := 0
	for _, ix := range ixs {
		for _, id := range ix.order {
			src := ix.docs[id]
			if field != "" && !sourceHas(src, field, value) {
				continue
			}
			total++
			if len(hits) < size {
				hits = append(hits, hit{Index: ix.name, ID: id, Score: 1, Source: src})
			}
		}
	}
	sh := map[string]int{"total": len(ixs), "successful": len(ixs), "skipped": 0, "failed": 0}
	if count {
		writeJSON(w, 200, map[string]any{"count": total, "_shards": sh})
		return
	}
	var maxScore any
	if len(hits) > 0 {
		maxScore = 1.0
	}
	writeJSON(w, 200, map[string]any{
		"took": 1, "timed_out": false, "_shards": sh,
		"hits": map[string]any{
			"total":     map[string]any{"value": total, "relation": "eq"},
			"max_score": maxScore,
			"hits":      hits,
		},
	})
}

func parseQuery(q string, body []byte) (field, value string, err error) {
	if q != "" {
		f, v, ok := strings.Cut(q, ":")
		if !ok {
			return "", "", fmt.Errorf("only field:value queries are supported, got [%s]", q)
		}
		return f, strings.Trim(v, `"`), nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", "", nil
	}
	var req struct {
		Query map[string]map[string]any `json:"query"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", "", fmt.Errorf("failed to parse search body: %v", err)
	}
	for kind, spec := range req.Query {
		switch kind {
		case "match_all":
			return "", "", nil
		case "term":
			for f, v := range spec {
				if m, ok := v.(map[string]any); ok {
					v = m["value"]
				}
				return f, fmt.Sprint(v), nil
			}
		default:
			return "", "", fmt.Errorf("unknown query [%s]", kind)
		}
	}
	return "", "", nil
}

// sourceHas reports whether a dotted field of the source equals value (any
// element, for arrays, and through arrays of objects).
func sourceHas(src json.RawMessage, field, value string) bool {
	var v any
	if json.Unmarshal(src, &v) != nil {
		return false
	}
	return valueHas(v, strings.Split(field, "."), value)
}

func valueHas(v any, path []string, value string) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if valueHas(e, path, value) {
				return true
			}
		}
		return false
	case map[string]any:
		if len(path) == 0 {
			return false
		}
		// A flattened or dotted key may hold the rest of the path.
		for i := len(path); i >= 1; i-- {
			if next, ok := x[strings.Join(path[:i], ".")]; ok && valueHas(next, path[i:], value) {
				return true
			}
		}
		return false
	default:
		return len(path) == 0 && fmt.Sprint(x) == value
	}
}
