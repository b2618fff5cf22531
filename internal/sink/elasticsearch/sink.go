package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Name is the sink's name in rejections and logs.
const Name = "elasticsearch"

// Sink writes ECS documents with bulk "create" requests. It implements
// stream.Sink and stream.Readiness; Write may be called concurrently.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	client *es.Client
	tr     *transport
	sem    chan struct{}
	bufs   sync.Pool
	health health
	stats  counters
	red    *secret.Redactor
	now    func() time.Time
	// pastLog rate-limits the warning about writes into indices that ILM
	// is due to delete.
	pastLog throttle

	mu     sync.Mutex
	closed bool
}

var (
	_ stream.Sink      = (*Sink)(nil)
	_ stream.Readiness = (*Sink)(nil)
)

// New builds the sink. It does not contact Elasticsearch.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("elasticsearch config: %w", errors.Join(errs...))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client, tr, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &Sink{
		cfg:    cfg,
		log:    logger.With("sink", Name),
		client: client,
		tr:     tr,
		sem:    make(chan struct{}, cfg.Bulk.MaxInFlight),
		red:    redactor(cfg),
		now:    time.Now,
	}
	s.pastLog.interval = cfg.LogInterval
	s.health.logged.interval = cfg.LogInterval
	s.health.log = s.log
	s.bufs.New = func() any { return new(bytes.Buffer) }
	return s, nil
}

// Ready returns nil while Elasticsearch accepts writes, or the reason it
// does not (unreachable, credentials refused, index blocked...).
func (s *Sink) Ready() error { return s.health.ready() }

// Close releases idle connections. Write calls must have returned.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.tr.CloseIdleConnections()
	return nil
}

// IndexName returns the index an event dated t goes to: the prefix and the
// first day of t's bucket in UTC, e.g. entra-sspr-2026.11.01 for a monthly
// bucket. The date suffix is what index.lifecycle.parse_origination_date
// reads, so retention counts from the bucket's date.
func IndexName(prefix, granularity string, t time.Time) string {
	y, m, d := bucketDate(granularity, t)
	b := make([]byte, 0, len(prefix)+11)
	b = append(b, prefix...)
	b = append(b, '-')
	// Four digits always: parse_origination_date wants -yyyy.MM.dd.
	for p := 1000; p > 1 && y < p; p /= 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(y), 10)
	b = append(b, '.', byte('0'+m/10), byte('0'+m%10), '.', byte('0'+d/10), byte('0'+d%10))
	return string(b)
}

// bucketDate is the first day, in UTC, of the bucket t falls in.
func bucketDate(granularity string, t time.Time) (int, time.Month, int) {
	y, m, d := t.UTC().Date()
	switch granularity {
	case Year:
		m, d = 1, 1
	case Day:
	default:
		d = 1
	}
	return y, m, d
}

// pastRetention reports whether ILM is due to delete the index an event
// dated t goes to: its age, counted from the bucket's first day (the date
// parse_origination_date reads from the name), has reached retention_days.
func (s *Sink) pastRetention(t, now time.Time) bool {
	y, m, d := bucketDate(s.cfg.Index.Granularity, t)
	deleteAt := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(time.Duration(s.cfg.ILM.RetentionDays) * 24 * time.Hour)
	return !now.Before(deleteAt)
}

// warnPastRetention counts n documents written into an index ILM is due
// to delete, and says so at most once per log_interval.
func (s *Sink) warnPastRetention(index string, n int) {
	total := s.stats.pastRetention.Add(int64(n))
	if ok, _ := s.pastLog.allow("past_retention"); !ok {
		return
	}
	s.log.Warn("elasticsearch: writing into an index older than the ILM retention; ILM deletes these documents at its next run",
		"index", index, "retention_days", s.cfg.ILM.RetentionDays, "documents_past_retention_total", total,
		"hint", "raise ilm.retention_days and run setup before backfilling events this old")
}

// item is one document's action and source lines inside a chunk buffer.
type item struct {
	doc        int // index into the docs of Write
	start, end int // byte range in the chunk's buffer
}

type chunk struct {
	buf   *bytes.Buffer
	items []item
}

// result is what sending one chunk came to.
type result struct {
	rejected []stream.Rejection
	err      error
}

// Write stores docs and returns nil when each is stored (created, or found
// already stored), a *stream.Rejected naming the documents Elasticsearch
// refuses for reasons of their own, or the context's error when ctx ends
// first. Everything else is retried with backoff.
func (s *Sink) Write(ctx context.Context, docs []ecs.Event) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errors.New("elasticsearch: write after close")
	}
	if len(docs) == 0 {
		return nil
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		rejected []stream.Rejection
		firstErr error
	)
	collect := func(r result) {
		mu.Lock()
		defer mu.Unlock()
		rejected = append(rejected, r.rejected...)
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}

	scratch := s.getBuf()
	defer s.bufs.Put(scratch)

	cur := chunk{buf: s.getBuf()}
	flush := func() bool {
		if len(cur.items) == 0 {
			return true
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			s.bufs.Put(cur.buf)
			cur = chunk{buf: s.getBuf()}
			return false
		}
		c := cur
		cur = chunk{buf: s.getBuf()}
		held := int64(c.buf.Len())
		s.stats.hold(held)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.sem }()
			defer s.stats.held.Add(-held)
			r := s.sendChunk(ctx, c)
			s.putBuf(c.buf)
			collect(r)
		}()
		return true
	}

	var pre []stream.Rejection // refused before sending; goroutines only touch rejected
	var lastKey int
	var lastName string
	var lastPast bool
	var past int // documents for indices ILM is due to delete
	var pastIndex string
	now := s.now()
	ok := true
	for i := range docs {
		d := &docs[i]
		if d.Event.ID == "" {
			pre = appendRejection(pre, i, errors.New("event.id is empty: the document cannot be stored exactly once"))
			continue
		}
		t := d.Time
		if t.IsZero() {
			var err error
			if t, err = time.Parse(time.RFC3339Nano, d.Timestamp); err != nil {
				pre = appendRejection(pre, i, fmt.Errorf("event time missing and @timestamp %q unparsable: the index cannot be chosen", d.Timestamp))
				continue
			}
		}
		y, m, dd := t.UTC().Date()
		if key := y*10000 + int(m)*100 + dd; key != lastKey || lastName == "" {
			lastKey, lastName = key, IndexName(s.cfg.Index.Prefix, s.cfg.Index.Granularity, t)
			lastPast = s.pastRetention(t, now)
		}
		if lastPast {
			past++
			pastIndex = lastName
		}

		scratch.Reset()
		writeAction(scratch, lastName, docID(d.Event.ID))
		// AppendJSON into the spare capacity makes the Write a copy onto
		// itself; '<', '>' and '&' stay literal, as Elasticsearch stores them.
		scratch.Write(d.AppendJSON(scratch.AvailableBuffer()))
		scratch.WriteByte('\n')
		if len(cur.items) > 0 && cur.buf.Len()+scratch.Len() > s.cfg.Bulk.MaxBytes {
			if ok = flush(); !ok {
				break
			}
		}
		start := cur.buf.Len()
		cur.buf.Write(scratch.Bytes())
		cur.items = append(cur.items, item{doc: i, start: start, end: cur.buf.Len()})
		if len(cur.items) >= s.cfg.Bulk.MaxDocs {
			if ok = flush(); !ok {
				break
			}
		}
	}
	if ok {
		flush()
	}
	if past > 0 {
		s.warnPastRetention(pastIndex, past)
	}
	s.putBuf(cur.buf)
	wg.Wait()
	rejected = append(rejected, pre...)

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("elasticsearch bulk: %w", err)
	}
	if firstErr != nil {
		return fmt.Errorf("elasticsearch bulk: %w", firstErr)
	}
	if len(rejected) > 0 {
		sort.Slice(rejected, func(a, b int) bool { return rejected[a].Index < rejected[b].Index })
		return &stream.Rejected{Sink: Name, Docs: rejected}
	}
	return nil
}

func appendRejection(rs []stream.Rejection, i int, err error) []stream.Rejection {
	return append(rs, stream.Rejection{Index: i, Err: err})
}

func (s *Sink) getBuf() *bytes.Buffer {
	b := s.bufs.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// putBuf keeps buffers up to the request bound for reuse; an oversized
// one (a single huge document) is left to the collector.
func (s *Sink) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 2*s.cfg.Bulk.MaxBytes {
		s.bufs.Put(b)
	}
}

// writeAction writes {"create":{"_index":"...","_id":"..."}} and a newline.
func writeAction(b *bytes.Buffer, index, id string) {
	b.WriteString(`{"create":{"_index":"`)
	b.WriteString(index) // validated prefix and digits: nothing to escape
	b.WriteString(`","_id":`)
	if plainJSON(id) {
		b.WriteByte('"')
		b.WriteString(id)
		b.WriteByte('"')
	} else {
		q, _ := json.Marshal(id)
		b.Write(q)
	}
	b.WriteString("}}\n")
}

// maxIDBytes is Elasticsearch's limit on an _id, in bytes of UTF-8: a
// longer one makes the node refuse the whole bulk request.
const maxIDBytes = 512

// hashedIDPrefix starts the _id of a record id that is not used as is.
const hashedIDPrefix = "longid-sha256-"

// docID is the _id a record id is stored under: the id itself, or, when it
// is longer than Elasticsearch allows, "longid-sha256-" and the hex SHA-256
// of its bytes (78 bytes). The same id always gives the same _id, so
// replays still deduplicate; event.id keeps the id whole. An id that
// itself starts with the prefix is hashed too, so a record can never be
// taken for a copy of another whose id was hashed.
func docID(id string) string {
	if len(id) <= maxIDBytes && !strings.HasPrefix(id, hashedIDPrefix) && encodedLen(id) <= maxIDBytes {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hashedIDPrefix + hex.EncodeToString(sum[:])
}

// encodedLen is the length of s as the node receives it: encoding/json
// turns each byte that is not UTF-8 into U+FFFD (3 bytes).
func encodedLen(s string) int {
	if utf8.ValidString(s) {
		return len(s)
	}
	n := 0
	for _, r := range s {
		n += utf8.RuneLen(r)
	}
	return n
}

func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}

// sendChunk sends one chunk until every item is stored or rejected, or ctx
// ends.
func (s *Sink) sendChunk(ctx context.Context, c chunk) result {
	return s.sendItems(ctx, c.buf.Bytes(), c.items, true)
}

// sendItems sends items of src (whole is true when they are all of src, in
// order, so src itself is the body) and retries what is not yet stored.
func (s *Sink) sendItems(ctx context.Context, src []byte, items []item, whole bool) result {
	var res result
	pending := items
	var body []byte
	if whole {
		body = src
	} else {
		body = buildBody(src, pending)
	}
	for attempt := 0; ; attempt++ {
		out := s.attempt(ctx, body, pending)
		if ctx.Err() != nil {
			return result{rejected: res.rejected, err: ctx.Err()}
		}
		res.rejected = append(res.rejected, out.rejected...)
		if out.refused != nil {
			return s.split(ctx, src, pending, out.refused, res)
		}
		if len(out.retry) == 0 {
			return res
		}
		if out.progress {
			attempt = 0
		}
		s.stats.retried.Add(int64(len(out.retry)))
		if len(out.retry) != len(pending) {
			body = buildBody(src, out.retry)
		}
		pending = out.retry
		if !sleep(ctx, s.backoff(attempt)) {
			return result{rejected: res.rejected, err: ctx.Err()}
		}
	}
}

// split handles a request refused as a whole for what it holds: halves
// are sent on their own until the document that causes the refusal is
// alone, and that document is rejected.
func (s *Sink) split(ctx context.Context, src []byte, pending []item, why *ItemError, res result) result {
	if len(pending) == 1 {
		e := *why
		if e.Status == http.StatusRequestEntityTooLarge {
			e.Reason = fmt.Sprintf("document of %d bytes refused as too large (HTTP 413): raise http.max_content_length", pending[0].end-pending[0].start)
		}
		s.stats.rejected.Add(1)
		res.rejected = appendRejection(res.rejected, pending[0].doc, &e)
		return res
	}
	half := len(pending) / 2
	for _, part := range [][]item{pending[:half], pending[half:]} {
		r := s.sendItems(ctx, src, part, false)
		res.rejected = append(res.rejected, r.rejected...)
		if r.err != nil {
			return result{rejected: res.rejected, err: r.err}
		}
	}
	return res
}

func buildBody(src []byte, items []item) []byte {
	n := 0
	for _, it := range items {
		n += it.end - it.start
	}
	b := make([]byte, 0, n)
	for _, it := range items {
		b = append(b, src[it.start:it.end]...)
	}
	return b
}

// backoff is exponential with jitter in [d/2, d): spread out so that many
// writers retrying a recovering cluster do not hit it in step.
func (s *Sink) backoff(attempt int) time.Duration {
	d := s.cfg.Retry.InitialBackoff
	for i := 0; i < attempt && d < s.cfg.Retry.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.Retry.MaxBackoff)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// attemptResult is what one bulk request came to.
type attemptResult struct {
	rejected []stream.Rejection
	retry    []item
	refused  *ItemError // the request was refused as a whole for what it holds: split it
	progress bool       // some item was stored
}

// bulkTop is a _bulk answer with its items left undecoded.
type bulkTop struct {
	Errors bool            `json:"errors"`
	Items  json.RawMessage `json:"items"`
}

// bulkResponse holds the items of a _bulk answer that has errors; they are
// decoded by action name without a map per item.
type bulkResponse struct {
	Items []struct {
		Create *bulkItem `json:"create"`
		Index  *bulkItem `json:"index"`
	} `json:"items"`
}

type bulkItem struct {
	Status int      `json:"status"`
	Error  *esError `json:"error"`
}

// Error types that would refuse every document alike: retrying is the only
// answer, and rejecting (dead-lettering) documents for them would lose data.
var blockingTypes = map[string]bool{
	"security_exception":           true,
	"cluster_block_exception":      true,
	"index_closed_exception":       true,
	"index_not_found_exception":    true,
	"invalid_index_name_exception": true,
	"authorization_exception":      true,
	"illegal_state_exception":      true,
}

func (s *Sink) attempt(ctx context.Context, body []byte, pending []item) attemptResult {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	s.stats.requests.Add(1)
	res, err := s.client.Bulk(bytes.NewReader(body), s.client.Bulk.WithContext(rctx))
	if err != nil {
		if ctx.Err() == nil {
			s.health.fail(kindUnreachable, "elasticsearch unreachable: "+s.red.Redact(err.Error()))
		}
		return attemptResult{retry: pending}
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return s.requestFailed(res.StatusCode, res.Header, res.Body, pending)
	}
	return s.readAnswer(res.Body, pending)
}

// requestFailed handles an answer refusing the request as a whole.
func (s *Sink) requestFailed(st int, h http.Header, body io.Reader, pending []item) attemptResult {
	switch {
	case st == http.StatusRequestEntityTooLarge:
		return attemptResult{refused: &ItemError{Status: st, Reason: "refused as too large (HTTP 413)"}}
	case st == http.StatusTooManyRequests:
		f := describeFailure(st, body, s.red)
		s.health.fail(kindBusy, "elasticsearch busy, retrying: "+f.Desc)
		return attemptResult{retry: pending}
	case st >= 500:
		f := describeFailure(st, body, s.red)
		s.health.fail(kindUnavailable, "elasticsearch unavailable: "+f.Desc)
		return attemptResult{retry: pending}
	case st == http.StatusBadRequest && isElasticsearch(h):
		f := describeFailure(st, body, s.red)
		if f.Type != "" {
			// The node validates a bulk request whole: one bad action (an
			// _id too long, a line it cannot parse) refuses all of them.
			return attemptResult{refused: &ItemError{Status: st, Type: f.Type, Reason: f.Reason}}
		}
		s.health.fail(kindBlocked, "elasticsearch refuses writes: "+f.Desc)
		return attemptResult{retry: pending}
	default:
		// 401, 403, 404, a 400 that is not Elasticsearch's (a proxy's
		// page) and other whole-request refusals cannot be pinned on a
		// document and hit every one alike: keep them, stop acking, and
		// say why; they heal when the cause is fixed.
		f := describeFailure(st, body, s.red)
		s.health.fail(kindBlocked, "elasticsearch refuses writes: "+f.Desc)
		return attemptResult{retry: pending}
	}
}

// readAnswer reads a bulk answer: every item's fate, in order.
func (s *Sink) readAnswer(body io.Reader, pending []item) attemptResult {
	rb := s.getBuf()
	defer s.bufs.Put(rb)
	var top bulkTop
	_, err := rb.ReadFrom(body)
	if err == nil {
		err = json.Unmarshal(rb.Bytes(), &top)
	}
	if err != nil {
		s.health.fail(kindUnavailable, "elasticsearch bulk answer unreadable: "+s.red.Redact(err.Error()))
		return attemptResult{retry: pending}
	}
	if !top.Errors && countElements(top.Items) == len(pending) {
		// Every action succeeded: no need to look at the items one by one.
		s.stats.created.Add(int64(len(pending)))
		s.health.ok()
		return attemptResult{progress: true}
	}
	var br bulkResponse
	if err := json.Unmarshal(top.Items, &br.Items); err != nil {
		s.health.fail(kindUnavailable, "elasticsearch bulk answer unreadable: "+s.red.Redact(err.Error()))
		return attemptResult{retry: pending}
	}
	if len(br.Items) != len(pending) {
		s.health.fail(kindUnavailable, fmt.Sprintf("elasticsearch bulk answer has %d items for %d actions", len(br.Items), len(pending)))
		return attemptResult{retry: pending}
	}
	return s.itemResults(br, pending)
}

// itemResults sorts the items of an answer with errors into stored,
// rejected and to retry, and reports the first reason to retry.
func (s *Sink) itemResults(br bulkResponse, pending []item) attemptResult {
	var out attemptResult
	var blocked, busy, odd string
	for i, w := range br.Items {
		it := w.Create
		if it == nil {
			it = w.Index
		}
		if it == nil || it.Status == 0 {
			out.retry = append(out.retry, pending[i])
			if odd == "" {
				odd = fmt.Sprintf("elasticsearch bulk answer item %d is not a create result with a status", i)
			}
			continue
		}
		switch {
		case it.Status >= 200 && it.Status < 300:
			s.stats.created.Add(1)
			out.progress = true
		case it.Status == http.StatusConflict && it.Error != nil && it.Error.Type == "version_conflict_engine_exception":
			// Created by an earlier attempt or an earlier run: stored.
			s.stats.duplicates.Add(1)
			out.progress = true
		case it.Error != nil && blockingTypes[it.Error.Type]:
			out.retry = append(out.retry, pending[i])
			if blocked == "" {
				blocked = s.red.Redact(fmt.Sprintf("HTTP %d %s", it.Status, it.Error.String()))
			}
		case it.Status == http.StatusTooManyRequests || it.Status >= 500 || it.Status == http.StatusConflict:
			out.retry = append(out.retry, pending[i])
			if busy == "" {
				busy = s.red.Redact(fmt.Sprintf("HTTP %d %s", it.Status, it.Error.String()))
			}
		case it.Status >= 400:
			reason := fmt.Sprintf("HTTP %d", it.Status)
			if it.Error != nil {
				reason = s.red.Redact(it.Error.String())
			}
			s.stats.rejected.Add(1)
			out.rejected = appendRejection(out.rejected, pending[i].doc, &ItemError{Status: it.Status, Type: s.red.Redact(errType(it.Error)), Reason: reason})
		default:
			out.retry = append(out.retry, pending[i])
			if odd == "" {
				odd = fmt.Sprintf("elasticsearch bulk answer item %d has status %d", i, it.Status)
			}
		}
	}
	switch {
	case blocked != "":
		s.health.fail(kindBlocked, "elasticsearch refuses writes: "+blocked)
	case odd != "":
		s.health.fail(kindUnavailable, odd)
	case busy != "":
		if out.progress {
			s.health.ok()
		}
		s.health.fail(kindBusy, "elasticsearch busy, retrying documents: "+busy)
	case out.progress || len(out.rejected) > 0:
		s.health.ok()
	}
	return out
}

// countElements counts the elements of a JSON array already known to be
// valid, without decoding them.
func countElements(arr []byte) int {
	n, depth, inString, escaped := 0, 0, false, false
	for _, c := range arr {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
			if depth == 1 && n == 0 {
				n = 1
			}
		case c == '[' || c == '{':
			if depth == 1 && n == 0 {
				n = 1
			}
			depth++
		case c == ']' || c == '}':
			depth--
		case c == ',' && depth == 1:
			n++
		case depth == 1 && n == 0 && c > ' ':
			n = 1 // a number, true, false or null
		}
	}
	return n
}

func errType(e *esError) string {
	if e == nil {
		return ""
	}
	return e.Type
}

// ItemError is Elasticsearch's refusal of one document, as carried in a
// stream.Rejection.
type ItemError struct {
	Status int    // the item's HTTP status
	Type   string // e.g. document_parsing_exception
	Reason string // type, reason and cause as Elasticsearch wrote them
}

func (e *ItemError) Error() string { return "elasticsearch refused the document: " + e.Reason }

// Stats are the sink's counters since New.
type Stats struct {
	Created      int64 // documents answered 201
	Duplicates   int64 // documents answered 409: already stored
	Rejected     int64 // documents refused by Elasticsearch for reasons of their own
	Retried      int64 // document attempts repeated after a failure
	BulkRequests int64 // bulk requests sent, including failed ones
	HeldBytes    int64 // bytes of bulk bodies held by requests in flight now
	PeakHeld     int64 // most bytes of bulk bodies ever held at once
	// PastRetention counts documents written into an index whose age,
	// from the date in its name, has reached ilm.retention_days: ILM
	// deletes them at its next run.
	PastRetention int64
}

// Stats returns the counters, for metrics.
func (s *Sink) Stats() Stats {
	return Stats{
		Created: s.stats.created.Load(), Duplicates: s.stats.duplicates.Load(),
		Rejected: s.stats.rejected.Load(), Retried: s.stats.retried.Load(),
		BulkRequests: s.stats.requests.Load(), HeldBytes: s.stats.held.Load(), PeakHeld: s.stats.peak.Load(),
		PastRetention: s.stats.pastRetention.Load(),
	}
}

type counters struct {
	created, duplicates, rejected, retried, requests atomic.Int64
	held, peak                                       atomic.Int64
	pastRetention                                    atomic.Int64
}

func (c *counters) hold(n int64) {
	now := c.held.Add(n)
	for {
		p := c.peak.Load()
		if now <= p || c.peak.CompareAndSwap(p, now) {
			return
		}
	}
}

// failure kinds, each logged at most once per interval.
const (
	kindUnreachable = "unreachable"
	kindUnavailable = "unavailable"
	kindBusy        = "busy"
	kindBlocked     = "blocked"
)

// throttle lets a message of each kind through at most once per
// interval, counting the ones it holds back.
type throttle struct {
	interval time.Duration

	mu         sync.Mutex
	lastLogged map[string]time.Time
	suppressed map[string]int
}

// allow reports whether a message of kind may be logged now and, if so,
// how many were held back since the last one.
func (t *throttle) allow(kind string) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastLogged == nil {
		t.lastLogged, t.suppressed = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if last, ok := t.lastLogged[kind]; ok && now.Sub(last) < t.interval {
		t.suppressed[kind]++
		return false, 0
	}
	n := t.suppressed[kind]
	t.lastLogged[kind], t.suppressed[kind] = now, 0
	return true, n
}

// reset lets the next message of every kind through.
func (t *throttle) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.lastLogged)
}

// health tracks whether writes go through and rate-limits the logging of
// failures that persist.
type health struct {
	log    *slog.Logger
	logged throttle

	mu     sync.Mutex
	reason string // non-empty while not ready
}

func (h *health) ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reason != "" {
		return errors.New(h.reason)
	}
	return nil
}

func (h *health) fail(kind, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Back-pressure (429) is normal operation, not a reason to report the
	// exporter unready.
	if kind != kindBusy {
		h.reason = reason
	}
	ok, n := h.logged.allow(kind)
	if !ok {
		return
	}
	level := slog.LevelWarn
	if kind == kindBlocked {
		level = slog.LevelError
	}
	h.log.Log(context.Background(), level, reason, "kind", kind, "repeats_since_last_log", n,
		"action", "retrying with backoff; nothing is acknowledged until it succeeds")
}

func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reason != "" {
		h.log.Info("elasticsearch accepts writes again", "previous_problem", h.reason)
		h.reason = ""
	}
	h.logged.reset()
}
