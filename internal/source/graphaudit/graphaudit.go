// Package graphaudit reads the Microsoft Entra audit log from Microsoft
// Graph (GET /auditLogs/directoryAudits) for a backfill: the range in
// time slices, each filtered on activityDateTime and on the services and
// activities of the catalog (so that records that cannot be SSPR events
// are not fetched), following @odata.nextLink as given, at the pace
// Graph's reporting APIs allow, waiting out 429 and 503 as Retry-After
// says.
package graphaudit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill"
	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/msgraph"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Options are what a Reader reads besides its Config.
type Options struct {
	Range backfill.Range
	// Activities are the catalog's activity names.
	Activities []string
	Logger     *slog.Logger
}

// Reader reads the slices of a range.
type Reader struct {
	cfg    Config
	opts   Options
	client *msgraph.Client
	base   string   // the directoryAudits URL
	groups []string // the activity part of each query
	tenant string
	logger *slog.Logger

	lastRequest time.Time
	warnLimit   *retry.Limiter
}

// New returns a reader of cfg's Graph. It requests nothing yet.
func New(cfg Config, o Options) (*Reader, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	hc, err := azcred.HTTPClient(cfg.CAFile, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	client, err := msgraph.New(cfg.Endpoint, hc, func() (azcore.TokenCredential, error) { return azcred.New(cfg.Options, hc) })
	if err != nil {
		return nil, err
	}
	r := &Reader{cfg: cfg, opts: o, client: client, base: client.URL("/v1.0/auditLogs/directoryAudits"), logger: o.Logger, warnLimit: retry.NewLimiter(time.Minute)}
	r.groups = groups(r.base, terms(o.Activities), cfg.MaxFilterTerms, cfg.PageSize)
	return r, nil
}

// Queries is how many queries each slice takes.
func (r *Reader) Queries() int { return len(r.groups) }

// Tenant is the tenant read: tenant_id when it is a GUID, else the one
// the authority issued the token for. It fetches a token, so that wrong
// credentials are found before anything else is done.
func (r *Reader) Tenant(ctx context.Context) (string, error) {
	if r.tenant != "" {
		return r.tenant, nil
	}
	tok, err := r.client.Token(ctx)
	if err != nil {
		return "", explain(err)
	}
	switch tid := msgraph.TenantOfToken(tok); {
	case azcred.IsTenantID(r.cfg.TenantID):
		r.tenant = r.cfg.TenantID
	case azcred.IsTenantID(tid):
		r.tenant = tid
	default:
		return "", errors.New("graph: the token names no tenant: set tenant_id to the tenant's GUID")
	}
	return r.tenant, nil
}

// Source names what the reader reads, for the state file.
func (r *Reader) Source() string { return r.cfg.Endpoint + " tenant " + r.tenant }

// slice is one part of the range, at a multiple of the slice length.
type slice struct{ from, to time.Time }

func (r *Reader) slices() []slice {
	var out []slice
	n := r.cfg.Slice
	start := time.Unix(0, 0).UTC().Add(r.opts.Range.From.Sub(time.Unix(0, 0)).Truncate(n))
	for b := start; b.Before(r.opts.Range.To); b = b.Add(n) {
		out = append(out, slice{from: later(b, r.opts.Range.From), to: earlier(b.Add(n), r.opts.Range.To)})
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s slice) key() string {
	return s.from.UTC().Format(time.RFC3339Nano) + "/" + s.to.UTC().Format(time.RFC3339Nano)
}

// Read reads every slice not complete yet. Every slice is begun first,
// so that the plan is known from the start.
func (r *Reader) Read(ctx context.Context, feed backfill.Feed) error {
	tenant, err := r.Tenant(ctx)
	if err != nil {
		return err
	}
	feed.Tenant(tenant)
	v := version(r.groups)
	var todo []slice
	for _, s := range r.slices() {
		if _, ok := feed.Begin(backfill.Unit{Key: s.key(), Tenant: tenant, From: s.from, To: s.to, Version: v}); ok {
			todo = append(todo, s)
		}
	}
	feed.Planned()
	for _, s := range todo {
		if err := r.readSlice(ctx, feed, s); err != nil {
			return err
		}
	}
	return nil
}

// page is a directoryAudits answer.
type page struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

type auditMeta struct {
	ID   string `json:"id"`
	When string `json:"activityDateTime"`
}

// readSlice runs the slice's queries, each page one chunk. A record two
// queries both return is handed on once.
func (r *Reader) readSlice(ctx context.Context, feed backfill.Feed, s slice) error {
	seen := map[string]bool{}
	where := "auditLogs/directoryAudits " + s.key()
	n := int64(0)
	hour := s.from.UTC().Truncate(time.Hour)
	for qi, g := range r.groups {
		link := queryURL(r.base, s.from, s.to, g, r.cfg.PageSize)
		for link != "" {
			body, err := r.get(ctx, link)
			if err != nil {
				return fmt.Errorf("slice %s: %w", s.key(), err)
			}
			var p page
			if err := json.Unmarshal(body, &p); err != nil {
				return fmt.Errorf("slice %s: graph answered with a page that is not JSON: %w", s.key(), err)
			}
			if p.NextLink != "" {
				if err := r.client.SameService(p.NextLink); err != nil {
					return err
				}
			}
			link = p.NextLink
			c := backfill.Chunk{Unit: s.key(), Bytes: int64(len(body)), Final: link == "" && qi == len(r.groups)-1}
			for _, item := range p.Value {
				var m auditMeta
				isObject := len(bytes.TrimSpace(item)) > 0 && bytes.TrimSpace(item)[0] == '{'
				if isObject && json.Unmarshal(item, &m) == nil && m.ID != "" {
					if seen[m.ID] {
						continue
					}
					seen[m.ID] = true
				}
				n++
				b := stream.Body{Data: item, Pos: stream.Position{Kind: "graph", File: where, Line: n}, Form: stream.FormRecord}
				if !isObject {
					b.Err = entra.ErrNotObject
				}
				c.Bodies = append(c.Bodies, b)
				c.Hours = append(c.Hours, hourOf(m.When, hour))
			}
			if err := feed.Emit(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// hourOf is the hour of an activityDateTime, or def when it has none.
func hourOf(v string, def time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return def
	}
	return t.UTC().Truncate(time.Hour)
}

// get requests one page at the allowed pace: throttled answers are waited
// out as long as Graph asks, other failures that may pass are tried again
// up to max_attempts times, the rest end the backfill.
func (r *Reader) get(ctx context.Context, link string) ([]byte, error) {
	b := r.cfg.Retry.Backoff()
	for attempt := 1; ; {
		if !r.pace(ctx) {
			return nil, ctx.Err()
		}
		body, err := r.client.Get(ctx, link)
		if err == nil {
			return body, nil
		}
		var ge *msgraph.Error
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.As(err, &ge) || !ge.Transient() {
			return nil, explain(err)
		}
		wait := ge.RetryAfter
		if !ge.Throttled() {
			if attempt >= r.cfg.MaxAttempts {
				return nil, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			attempt++
		}
		if wait <= 0 {
			wait = b.Next()
		}
		if ok, held := r.warnLimit.Allow(time.Now()); ok {
			r.logger.Warn("graph: request failed; trying again", "error", err.Error(), "retry_in", wait.Round(time.Millisecond).String(), "similar_failures_not_logged", held)
		}
		if !retry.Wait(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// pace waits until request_interval has passed since the last request.
func (r *Reader) pace(ctx context.Context) bool {
	if d := time.Until(r.lastRequest.Add(r.cfg.RequestInterval)); d > 0 && !retry.Wait(ctx, d) {
		return false
	}
	r.lastRequest = time.Now()
	return true
}

// explain adds what to do to the errors a person must fix.
func explain(err error) error {
	var ge *msgraph.Error
	if !errors.As(err, &ge) {
		return err
	}
	switch ge.Status {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w (check the credential settings of backfill.graph)", err)
	case http.StatusForbidden:
		return fmt.Errorf("%w (grant the application AuditLog.Read.All, an application permission, with admin consent)", err)
	case http.StatusBadRequest:
		return fmt.Errorf("%w (Graph refused the query)", err)
	case 0:
		if ge.Err != nil && !ge.Transient() {
			return fmt.Errorf("%w (check the credential settings of backfill.graph)", err)
		}
	}
	return err
}
