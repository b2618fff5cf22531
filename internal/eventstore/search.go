package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// Kinds of search stores.
const (
	KindElasticsearch = "elasticsearch"
	KindOpenSearch    = "opensearch"
)

// Search reads the indices of an Elasticsearch or OpenSearch output. A
// Scan opens a point in time over the index pattern and pages through it
// sorted by @timestamp and event.id with search_after, so any number of
// documents is read without the 10,000-hit window, one page in memory.
type Search struct {
	kind    string
	client  bulk.Client
	address string // without credentials
	index   string // index pattern
	redact  *secret.Redactor
	// PageSize is the number of hits of one search request.
	PageSize int
	// KeepAlive is how long the point in time lives between two pages.
	KeepAlive time.Duration
}

// NewSearch returns a reader of the indices matching index through client,
// kind being KindElasticsearch or KindOpenSearch; address names the store
// in manifests and errors, redact removes credentials from errors.
func NewSearch(kind string, client bulk.Client, address, index string, redact *secret.Redactor) *Search {
	return &Search{kind: kind, client: client, address: stripCredentials(address), index: index, redact: redact, PageSize: 2500, KeepAlive: 2 * time.Minute}
}

// Describe names the store and the index pattern.
func (s *Search) Describe() Source {
	return Source{Kind: s.kind, Address: s.address, Index: s.index}
}

// Scan hands out the documents matching q in order. The store returns
// @timestamp at millisecond precision, and the documents carry more: the
// documents of one millisecond are put in order here, and each is checked
// against Match, so the answer is exactly the files reader's.
func (s *Search) Scan(ctx context.Context, q Query, fn func(*ecs.Event) error) (err error) {
	pit, err := s.openPIT(ctx)
	if err != nil {
		return err
	}
	if pit == "" {
		return nil // no index matches the pattern
	}
	defer func() {
		// The point in time expires on its own; closing it frees the
		// node's resources now, with a context of its own so that a
		// cancelled scan still closes it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if cerr := s.closePIT(cctx, pit); cerr != nil && err == nil {
			err = cerr
		}
	}()
	body := map[string]any{
		"size":             s.PageSize,
		"query":            searchQuery(q),
		"sort":             s.sort(),
		"track_total_hits": false,
	}
	var (
		group   []*ecs.Event // the documents of the current millisecond
		groupMS int64
	)
	flush := func() error {
		slices.SortFunc(group, Compare)
		for i, e := range group {
			// A document stored twice (in two indices) is handed out once.
			if i > 0 && e.Event.ID == group[i-1].Event.ID && e.Time.Equal(group[i-1].Time) {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		clear(group)
		group = group[:0]
		return nil
	}
	// The next page is fetched while this one is decoded and handed out:
	// the store and the decoding each take about half the time.
	fctx, stop := context.WithCancel(ctx)
	pages := make(chan *page, 1)
	fetched := make(chan error, 1)
	go func() {
		defer close(pages)
		fetched <- s.fetch(fctx, body, &pit, pages)
	}()
	defer func() {
		stop()
		for range pages {
		}
	}()
	for p := range pages {
		for i := range p.Hits.Hits {
			e := &p.Hits.Hits[i].Source
			if ms := e.Time.UnixMilli(); ms != groupMS {
				if err := flush(); err != nil {
					return err
				}
				groupMS = ms
			}
			if q.Match(e) {
				group = append(group, e)
			}
		}
	}
	if err := <-fetched; err != nil {
		return err
	}
	return flush()
}

// fetch sends the pages of a scan to pages in order until the last (one
// shorter than PageSize), keeping *pit the newest point-in-time id.
func (s *Search) fetch(ctx context.Context, body map[string]any, pit *string, pages chan<- *page) error {
	for {
		body["pit"] = map[string]any{"id": *pit, "keep_alive": keepAlive(s.KeepAlive)}
		p, err := s.search(ctx, body)
		if err != nil {
			return err
		}
		if p.PitID != "" {
			*pit = p.PitID
		}
		select {
		case pages <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
		if len(p.Hits.Hits) < s.PageSize {
			return nil
		}
		body["search_after"] = p.Hits.Hits[len(p.Hits.Hits)-1].Sort
	}
}

// page is the part of a search answer the reader uses. The documents are
// decoded with the page, in the fetching goroutine: one pass over the
// answer instead of one for the page and one more for each document.
type page struct {
	PitID string `json:"pit_id"`
	Hits  struct {
		Hits []hit `json:"hits"`
	} `json:"hits"`
}

type hit struct {
	ID     string            `json:"_id"`
	Source ecs.Event         `json:"_source"`
	Sort   []json.RawMessage `json:"sort"`
}

// rawPage is a page with its documents undecoded, to name the document a
// page fails to decode on.
type rawPage struct {
	Hits struct {
		Hits []struct {
			ID     string          `json:"_id"`
			Source json.RawMessage `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

func (s *Search) search(ctx context.Context, body map[string]any) (*page, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	ans, err := s.answer(ctx, http.MethodPost, "/_search", b)
	if err != nil {
		return nil, err
	}
	var p page
	if err := json.Unmarshal(ans, &p); err != nil {
		return nil, s.pageError(ans, err)
	}
	for i := range p.Hits.Hits {
		h := &p.Hits.Hits[i]
		t, err := time.Parse(time.RFC3339Nano, h.Source.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("%s %s: document %s: @timestamp: %w", s.kind, s.address, h.ID, err)
		}
		h.Source.Time = t
	}
	return &p, nil
}

// pageError names the document of ans that does not decode as an event,
// else the page's own error.
func (s *Search) pageError(ans []byte, err error) error {
	var raw rawPage
	if json.Unmarshal(ans, &raw) == nil {
		for _, h := range raw.Hits.Hits {
			var e ecs.Event
			if derr := json.Unmarshal(h.Source, &e); derr != nil {
				return fmt.Errorf("%s %s: document %s: %w", s.kind, s.address, h.ID, derr)
			}
		}
	}
	return fmt.Errorf("%s %s: POST /_search: answer: %w", s.kind, s.address, err)
}

// openPIT opens a point in time over the index pattern; "" when no index
// matches it.
func (s *Search) openPIT(ctx context.Context) (string, error) {
	path := "/" + url.PathEscape(s.index) + "/_pit"
	if s.kind == KindOpenSearch {
		path = "/" + url.PathEscape(s.index) + "/_search/point_in_time"
	}
	path += "?keep_alive=" + keepAlive(s.KeepAlive)
	var ans struct {
		ID    string `json:"id"`     // Elasticsearch
		PitID string `json:"pit_id"` // OpenSearch
	}
	err := s.call(ctx, http.MethodPost, path, nil, &ans)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if ans.ID == "" {
		ans.ID = ans.PitID
	}
	if ans.ID == "" {
		return "", fmt.Errorf("%s %s: point in time: the answer holds no id", s.kind, s.address)
	}
	return ans.ID, nil
}

func (s *Search) closePIT(ctx context.Context, id string) error {
	if s.kind == KindOpenSearch {
		b, _ := json.Marshal(map[string]any{"pit_id": []string{id}})
		return s.call(ctx, http.MethodDelete, "/_search/point_in_time", b, nil)
	}
	b, _ := json.Marshal(map[string]any{"id": id})
	return s.call(ctx, http.MethodDelete, "/_pit", b, nil)
}

// statusError is an answer of the store with a failure status.
type statusError struct {
	kind, address, what string
	status              int
	reason              string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %s: HTTP %d: %s", e.kind, e.address, e.what, e.status, e.reason)
}

// call sends one request and decodes a 2xx answer into out (nil: drop it).
func (s *Search) call(ctx context.Context, method, path string, body []byte, out any) error {
	ans, err := s.answer(ctx, method, path, body)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(ans, out); err != nil {
		return fmt.Errorf("%s %s: %s: answer: %w", s.kind, s.address, what(method, path), err)
	}
	return nil
}

// answer sends one request and returns the body of a 2xx answer.
func (s *Search) answer(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	resp, err := s.client.Do(ctx, bulk.Request{Method: method, Path: path, Body: body})
	if err != nil {
		return nil, s.redact.RedactError(fmt.Errorf("%s %s: %s: %w", s.kind, s.address, what(method, path), err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, &statusError{kind: s.kind, address: s.address, what: what(method, path), status: resp.StatusCode, reason: s.redact.Redact(errorReason(b))}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, s.redact.RedactError(fmt.Errorf("%s %s: %s: answer: %w", s.kind, s.address, what(method, path), err))
	}
	return b, nil
}

// what names a request in errors, without its query string.
func what(method, path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return method + " " + path
}

// errorReason is the type and reason of an engine's error answer, else
// the start of the answer.
func errorReason(b []byte) string {
	var env struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error.Type != "" {
		return env.Error.Type + ": " + env.Error.Reason
	}
	if len(b) > 300 {
		b = b[:300]
	}
	return string(bytes.TrimSpace(b))
}

func keepAlive(d time.Duration) string {
	if d <= 0 {
		d = 2 * time.Minute
	}
	return fmt.Sprintf("%ds", int(d.Seconds()+0.5))
}

// stripCredentials drops any user:password@ from a URL.
func stripCredentials(address string) string {
	u, err := url.Parse(address)
	if err != nil || u.User == nil {
		return address
	}
	u.User = nil
	return u.String()
}

// searchQuery is q as the store's query: the same conditions as Match,
// keyword terms compared case-insensitively where Match folds case. The
// period is widened to whole milliseconds, the store's precision; Match,
// applied to each hit, cuts it back.
func searchQuery(q Query) map[string]any {
	var filter []any
	rng := map[string]any{}
	if !q.From.IsZero() {
		rng["gte"] = q.From.UTC().Truncate(time.Millisecond).Format(msLayout)
	}
	if !q.To.IsZero() {
		to := q.To.UTC()
		if t := to.Truncate(time.Millisecond); !t.Equal(to) {
			to = t.Add(time.Millisecond)
		}
		rng["lt"] = to.Format(msLayout)
	}
	if len(rng) > 0 {
		rng["format"] = "strict_date_optional_time"
		filter = append(filter, map[string]any{"range": map[string]any{"@timestamp": rng}})
	}
	if len(q.Tenants) > 0 {
		filter = append(filter, terms("cloud.account.id", q.Tenants))
	}
	if len(q.Domains) > 0 {
		filter = append(filter, anyOf(
			anyOf(folded("user.target.domain", q.Domains)...),
			map[string]any{"bool": map[string]any{
				"must_not":             []any{map[string]any{"exists": map[string]any{"field": "user.target.domain"}}},
				"should":               folded("user.domain", q.Domains),
				"minimum_should_match": 1,
			}},
		))
	}
	if len(q.Groups) > 0 {
		filter = append(filter, anyOf(append([]any{terms("user.target.group.id", q.Groups)}, folded("user.target.group.name", q.Groups)...)...))
	}
	if len(q.Users) > 0 {
		c := folded("user.target.name", q.Users)
		c = append(c, terms("user.target.id", q.Users))
		c = append(c, folded("user.name", q.Users)...)
		c = append(c, terms("user.id", q.Users))
		filter = append(filter, anyOf(c...))
	}
	if len(q.Actions) > 0 {
		filter = append(filter, terms("event.action", q.Actions))
	}
	if len(q.Outcomes) > 0 {
		filter = append(filter, terms("event.outcome", q.Outcomes))
	}
	// The alerts indices (prefix-alerts-*) share the events' pattern; their
	// documents are not events.
	b := map[string]any{"must_not": []any{map[string]any{"term": map[string]any{"event.kind": ecs.KindAlert}}}}
	if len(filter) > 0 {
		b["filter"] = filter
	}
	return map[string]any{"bool": b}
}

const msLayout = "2006-01-02T15:04:05.000Z"

func terms(field string, values []string) map[string]any {
	return map[string]any{"terms": map[string]any{field: values}}
}

// folded is one case-insensitive term query per value.
func folded(field string, values []string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = map[string]any{"term": map[string]any{field: map[string]any{"value": v, "case_insensitive": true}}}
	}
	return out
}

func anyOf(c ...any) map[string]any {
	return map[string]any{"bool": map[string]any{"should": c, "minimum_should_match": 1}}
}

// sort is the order of the pages: by @timestamp, whose millisecond
// precision Scan makes up for, then a tiebreaker that keeps search_after
// exact. Elasticsearch has the point in time's own, _shard_doc, cheaper
// than a keyword; OpenSearch gets event.id.
func (s *Search) sort() []any {
	ts := map[string]any{"@timestamp": map[string]any{"order": "asc"}}
	if s.kind == KindElasticsearch {
		return []any{ts, map[string]any{"_shard_doc": map[string]any{"order": "asc"}}}
	}
	return []any{ts, map[string]any{"event.id": map[string]any{"order": "asc"}}}
}
