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
	return &Search{kind: kind, client: client, address: stripCredentials(address), index: index, redact: redact, PageSize: 2000, KeepAlive: 2 * time.Minute}
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
		"sort":             []any{map[string]any{"@timestamp": map[string]any{"order": "asc"}}, map[string]any{"event.id": map[string]any{"order": "asc"}}},
		"track_total_hits": false,
	}
	var (
		group   []*ecs.Event // the documents of the current millisecond
		groupMS int64
		lastID  string
	)
	flush := func() error {
		slices.SortFunc(group, func(a, b *ecs.Event) int {
			switch {
			case Less(a, b):
				return -1
			case Less(b, a):
				return 1
			}
			return 0
		})
		for _, e := range group {
			if err := fn(e); err != nil {
				return err
			}
		}
		group = group[:0]
		return nil
	}
	for {
		body["pit"] = map[string]any{"id": pit, "keep_alive": keepAlive(s.KeepAlive)}
		page, err := s.search(ctx, body)
		if err != nil {
			return err
		}
		if page.PitID != "" {
			pit = page.PitID
		}
		for _, h := range page.Hits.Hits {
			e := new(ecs.Event)
			if err := json.Unmarshal(h.Source, e); err != nil {
				return fmt.Errorf("%s %s: document %s: %w", s.kind, s.address, h.ID, err)
			}
			t, err := time.Parse(time.RFC3339Nano, e.Timestamp)
			if err != nil {
				return fmt.Errorf("%s %s: document %s: @timestamp: %w", s.kind, s.address, h.ID, err)
			}
			e.Time = t
			// Documents sort by millisecond then id, so a document stored
			// twice (in two indices) comes twice in a row.
			if e.Event.ID == lastID && len(group) > 0 && group[len(group)-1].Time.Equal(t) {
				continue
			}
			lastID = e.Event.ID
			if ms := t.UnixMilli(); ms != groupMS {
				if err := flush(); err != nil {
					return err
				}
				groupMS = ms
			}
			if q.Match(e) {
				group = append(group, e)
			}
		}
		if len(page.Hits.Hits) < s.PageSize {
			return flush()
		}
		body["search_after"] = page.Hits.Hits[len(page.Hits.Hits)-1].Sort
	}
}

// page is the part of a search answer the reader uses.
type page struct {
	PitID string `json:"pit_id"`
	Hits  struct {
		Hits []struct {
			ID     string            `json:"_id"`
			Source json.RawMessage   `json:"_source"`
			Sort   []json.RawMessage `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
}

func (s *Search) search(ctx context.Context, body map[string]any) (*page, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	var p page
	if err := s.call(ctx, http.MethodPost, "/_search", b, &p); err != nil {
		return nil, err
	}
	return &p, nil
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
	what := method + " " + path
	if i := bytes.IndexByte([]byte(path), '?'); i >= 0 {
		what = method + " " + path[:i]
	}
	resp, err := s.client.Do(ctx, bulk.Request{Method: method, Path: path, Body: body})
	if err != nil {
		return s.redact.RedactError(fmt.Errorf("%s %s: %s: %w", s.kind, s.address, what, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return &statusError{kind: s.kind, address: s.address, what: what, status: resp.StatusCode, reason: s.redact.Redact(errorReason(b))}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %s: answer: %w", s.kind, s.address, what, err)
	}
	return nil
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
	if len(filter) == 0 {
		return map[string]any{"match_all": map[string]any{}}
	}
	return map[string]any{"bool": map[string]any{"filter": filter}}
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
