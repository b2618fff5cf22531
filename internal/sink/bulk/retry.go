package bulk

import (
	"context"
	"fmt"
	"net/http"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// result is what sending one chunk came to.
type result struct {
	rejected []stream.Rejection
	err      error
}

// attemptResult is what one bulk request came to.
type attemptResult struct {
	rejected []stream.Rejection
	retry    []item
	refused  *ItemError // the request was refused as a whole for what it holds: split it
	progress bool       // some item was stored
}

// bulkPath is where bulk requests go. filter_path keeps only what the sink
// reads of the answer, whether there were errors and each item's status
// and error: a node then leaves out the index, id, version, shards and
// sequence numbers of every item, nine tenths of an answer's bytes, which
// the sink would otherwise have to parse.
const bulkPath = "/_bulk?filter_path=errors,items.*.status,items.*.error"

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

// sendChunk sends one chunk until every item is stored or rejected, or ctx
// ends.
func (s *Sink) sendChunk(ctx context.Context, c chunk) result {
	return s.sendItems(ctx, c.buf.Bytes(), c.items, true)
}

// sendItems sends items of src (whole is true when they are all of src, in
// order, so src itself is the body) and retries what is not yet stored,
// with backoff, until ctx ends. A round that stores something starts the
// backoff again.
func (s *Sink) sendItems(ctx context.Context, src []byte, items []item, whole bool) result {
	var res result
	pending := items
	var body []byte
	if whole {
		body = src
	} else {
		body = buildBody(src, pending)
	}
	b := s.opts.Retry.Backoff()
	for {
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
			b.Reset()
		}
		s.stats.retried.Add(int64(len(out.retry)))
		if len(out.retry) != len(pending) {
			body = buildBody(src, out.retry)
		}
		pending = out.retry
		if !retry.Wait(ctx, b.Next()) {
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

// attempt sends one bulk request and sorts out what its answer means.
func (s *Sink) attempt(ctx context.Context, body []byte, pending []item) attemptResult {
	rctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	s.stats.requests.Add(1)
	res, err := s.client.Do(rctx, Request{Method: http.MethodPost, Path: bulkPath, Body: body})
	if err != nil {
		if ctx.Err() == nil {
			s.health.fail(kindUnreachable, s.eng.Name+" unreachable: "+s.red.Redact(err.Error()))
		}
		return attemptResult{retry: pending}
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return s.requestFailed(res, pending)
	}
	return s.readAnswer(res.Body, pending)
}

// requestFailed handles an answer refusing the request as a whole.
func (s *Sink) requestFailed(res *http.Response, pending []item) attemptResult {
	st := res.StatusCode
	if st == http.StatusRequestEntityTooLarge {
		return attemptResult{refused: &ItemError{Sink: s.eng.Name, Status: st, Reason: "refused as too large (HTTP 413)"}}
	}
	f := DescribeFailure(st, res.Body, s.red)
	switch {
	case st == http.StatusTooManyRequests:
		s.health.fail(kindBusy, s.eng.Name+" busy, retrying: "+f.Desc)
	case st >= 500:
		s.health.fail(kindUnavailable, s.eng.Name+" unavailable: "+f.Desc)
	case st == http.StatusBadRequest && f.Type != "" && s.eng.FromNode(res.Header, f):
		// The node validates a bulk request whole: one bad action (an
		// _id too long, a line it cannot parse) refuses all of them.
		return attemptResult{refused: &ItemError{Sink: s.eng.Name, Status: st, Type: f.Type, Reason: f.Reason}}
	default:
		// 401, 403, 404, a 400 that is not the node's (a proxy's page)
		// and other whole-request refusals cannot be pinned on a document
		// and hit every one alike: keep them, stop acking, and say why;
		// they heal when the cause is fixed.
		s.health.fail(kindBlocked, s.eng.Name+" refuses writes: "+f.Desc)
	}
	return attemptResult{retry: pending}
}

// itemResults sorts the items of an answer with errors into stored,
// rejected and to retry, and reports the first reason to retry.
func (s *Sink) itemResults(items bulkItems, pending []item) attemptResult {
	var out attemptResult
	var blocked, busy, odd string
	for i, w := range items {
		it := w.Create
		if it == nil {
			it = w.Index
		}
		if it == nil || it.Status == 0 {
			out.retry = append(out.retry, pending[i])
			if odd == "" {
				odd = fmt.Sprintf("%s bulk answer item %d is not a create result with a status", s.eng.Name, i)
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
			out.rejected = appendRejection(out.rejected, pending[i].doc, &ItemError{Sink: s.eng.Name, Status: it.Status, Type: s.red.Redact(errType(it.Error)), Reason: reason})
		default:
			out.retry = append(out.retry, pending[i])
			if odd == "" {
				odd = fmt.Sprintf("%s bulk answer item %d has status %d", s.eng.Name, i, it.Status)
			}
		}
	}
	switch {
	case blocked != "":
		s.health.fail(kindBlocked, s.eng.Name+" refuses writes: "+blocked)
	case odd != "":
		s.health.fail(kindUnavailable, odd)
	case busy != "":
		if out.progress {
			s.health.ok()
		}
		s.health.fail(kindBusy, s.eng.Name+" busy, retrying documents: "+busy)
	case out.progress || len(out.rejected) > 0:
		s.health.ok()
	}
	return out
}
