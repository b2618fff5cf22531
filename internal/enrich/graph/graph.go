// Package graph adds the target user's groups and directory roles to the
// documents (user.target.group.*, user.target.roles) from Microsoft Graph.
//
// Graph is a remote service that can be slow, throttle or be down, and
// the pipeline must neither stall nor drop events for it. So lookups run
// in the background, answers are cached per user (LRU, with a TTL), and a
// batch waits at most max_wait for the answers it misses, and not at all
// while Graph has asked to back off: a document whose answer is not there
// goes out without groups, and is counted. Documents keep their order and
// number; acknowledgement is untouched.
package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
)

// queueSize bounds the lookups waiting for a worker; a miss beyond it is
// not looked up this time.
const queueSize = 1024

// Lookup results, the keys of Stats.Lookups.
const (
	ResultOK        = "ok"        // groups and roles read
	ResultNotFound  = "not_found" // Graph does not know the user
	ResultThrottled = "throttled" // a 429 or 503 answer (the lookup waits and tries again)
	ResultError     = "error"     // the lookup failed; tried again at the user's next event
)

// Stats are the enricher's running totals.
type Stats struct {
	// Unenriched counts documents with a target user that went out
	// without groups and roles because Graph had not answered in time.
	Unenriched   int64
	Lookups      map[string]int64 // by result
	CacheEntries int
}

// Enricher looks up target users in Microsoft Graph.
type Enricher struct {
	client  *client
	cache   *cache
	maxWait time.Duration
	logger  *slog.Logger
	now     func() time.Time

	queue  chan string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	pending  map[string]chan struct{} // closed when the lookup ends
	notUntil time.Time                // no request before this (Retry-After, backoff)
	paused   chan struct{}            // closed, and replaced, when notUntil moves later
	backoff  *retry.Backoff
	closed   bool

	unenriched                      atomic.Int64
	ok, notFound, throttled, failed atomic.Int64
	logLimit                        *retry.Limiter
}

// New returns an enricher for cfg with its workers running; Close stops
// them. Nothing is requested before the first document needs it.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	hc, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	return newEnricher(cfg, hc, func() (azcore.TokenCredential, error) { return newCredential(cfg, hc) }, logger)
}

func newEnricher(cfg Config, hc *http.Client, newCred func() (azcore.TokenCredential, error), logger *slog.Logger) (*Enricher, error) {
	c, err := newClient(cfg, hc, newCred)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Enricher{
		client:   c,
		cache:    newCache(cfg.CacheSize, cfg.CacheTTL),
		maxWait:  cfg.MaxWait,
		logger:   logger,
		now:      time.Now,
		queue:    make(chan string, queueSize),
		ctx:      ctx,
		cancel:   cancel,
		pending:  map[string]chan struct{}{},
		paused:   make(chan struct{}),
		backoff:  cfg.Retry.Backoff(),
		logLimit: retry.NewLimiter(time.Minute),
	}
	for range max(1, cfg.Workers) {
		e.wg.Add(1)
		go e.work()
	}
	return e, nil
}

// Close stops the lookups and waits for the workers.
func (e *Enricher) Close(context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// Stats returns the totals so far.
func (e *Enricher) Stats() Stats {
	return Stats{
		Unenriched: e.unenriched.Load(),
		Lookups: map[string]int64{
			ResultOK: e.ok.Load(), ResultNotFound: e.notFound.Load(),
			ResultThrottled: e.throttled.Load(), ResultError: e.failed.Load(),
		},
		CacheEntries: e.cache.len(),
	}
}

// userKey names the target user for Graph: the object id, else the UPN.
func userKey(d *ecs.Event) string {
	if id := strings.TrimSpace(d.User.Target.ID); id != "" {
		return strings.ToLower(id)
	}
	return strings.ToLower(strings.TrimSpace(d.User.Target.Name))
}

// Enrich adds groups and roles to the documents whose target user's
// answer is cached or arrives within max_wait.
func (e *Enricher) Enrich(docs []ecs.Event) {
	now := e.now()
	var waits []chan struct{}
	seen := map[string]bool{}
	for i := range docs {
		k := userKey(&docs[i])
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := e.cache.get(k, now); ok {
			continue
		}
		if ch := e.request(k); ch != nil {
			waits = append(waits, ch)
		}
	}
	if len(waits) > 0 && e.maxWait > 0 && !e.backingOff(now) {
		e.await(waits)
	}
	now = e.now()
	for i := range docs {
		k := userKey(&docs[i])
		if k == "" {
			continue
		}
		m, ok := e.cache.get(k, now)
		if !ok {
			e.unenriched.Add(1)
			continue
		}
		apply(&docs[i].User.Target, m)
	}
}

// await waits until every lookup ended, max_wait passed, or Graph asked
// for a pause that outlasts max_wait.
func (e *Enricher) await(waits []chan struct{}) {
	deadline := e.now().Add(e.maxWait)
	t := time.NewTimer(e.maxWait)
	defer t.Stop()
	for _, ch := range waits {
		for done := false; !done; {
			e.mu.Lock()
			paused, until := e.paused, e.notUntil
			e.mu.Unlock()
			if until.After(deadline) {
				return
			}
			select {
			case <-ch:
				done = true
			case <-t.C:
				return
			case <-paused:
			}
		}
	}
}

// apply copies the lists, so that a document never shares storage with
// the cache.
func apply(t *ecs.TargetUser, m Membership) {
	t.Group.ID = slices.Clone(m.GroupIDs)
	t.Group.Name = slices.Clone(m.GroupNames)
	t.Roles = slices.Clone(m.Roles)
}

// request starts a lookup for key unless one is under way, and returns
// the channel closed when it ends; nil when the queue is full or the
// enricher closed.
func (e *Enricher) request(key string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	if ch, ok := e.pending[key]; ok {
		return ch
	}
	ch := make(chan struct{})
	select {
	case e.queue <- key:
		e.pending[key] = ch
		return ch
	default:
		return nil
	}
}

// backingOff reports whether Graph asked for a pause (or failed) recently
// enough that no request goes out now.
func (e *Enricher) backingOff(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return now.Before(e.notUntil)
}

// pause holds every request until now+d (the longest pause wins).
func (e *Enricher) pause(d time.Duration) {
	until := e.now().Add(d)
	e.mu.Lock()
	if until.After(e.notUntil) {
		e.notUntil = until
		close(e.paused)
		e.paused = make(chan struct{})
	}
	e.mu.Unlock()
}

// waitTurn sleeps until requests may go out again; false when closing.
func (e *Enricher) waitTurn(ctx context.Context) bool {
	e.mu.Lock()
	d := e.notUntil.Sub(e.now())
	e.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	return retry.Wait(ctx, d)
}

// throttledWait is the client's answer to a 429 or 503: pause every
// request for what Graph asked (or the backoff when it named nothing),
// then try again.
func (e *Enricher) throttledWait(ctx context.Context, d time.Duration) bool {
	e.throttled.Add(1)
	if d <= 0 {
		e.mu.Lock()
		d = e.backoff.Next()
		e.mu.Unlock()
	}
	e.pause(d)
	return e.waitTurn(ctx)
}

func (e *Enricher) work() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			e.drain()
			return
		case key := <-e.queue:
			e.lookup(key)
		}
	}
}

// drain ends the lookups still queued at Close, so no one waits for them.
func (e *Enricher) drain() {
	for {
		select {
		case key := <-e.queue:
			e.done(key)
		default:
			return
		}
	}
}

func (e *Enricher) done(key string) {
	e.mu.Lock()
	if ch, ok := e.pending[key]; ok {
		close(ch)
		delete(e.pending, key)
	}
	e.mu.Unlock()
}

func (e *Enricher) lookup(key string) {
	defer e.done(key)
	if !e.waitTurn(e.ctx) {
		return
	}
	m, err := e.client.memberships(e.ctx, key, e.throttledWait)
	switch {
	case err == nil:
		e.ok.Add(1)
		e.cache.put(key, m, e.now())
		e.mu.Lock()
		e.backoff.Reset()
		e.mu.Unlock()
	case errors.Is(err, errNotFound):
		e.notFound.Add(1)
		e.cache.put(key, Membership{}, e.now())
	case e.ctx.Err() != nil:
		// Closing: not a failure of Graph.
	default:
		e.failed.Add(1)
		e.mu.Lock()
		d := e.backoff.Next()
		e.mu.Unlock()
		e.pause(d)
		e.logFailure(err, d)
	}
}

// logFailure says why lookups fail, at most once a minute, with what to
// do; never the user or the token.
func (e *Enricher) logFailure(err error, pause time.Duration) {
	ok, held := e.logLimit.Allow(e.now())
	if !ok {
		return
	}
	attrs := []any{"error", err.Error(), "retry_in", pause.Round(time.Millisecond).String(), "similar_failures_not_logged", held}
	var ge *Error
	if errors.As(err, &ge) {
		switch ge.Status {
		case http.StatusUnauthorized:
			attrs = append(attrs, "hint", "check enrich.graph tenant_id, client_id and client_secret")
		case http.StatusForbidden:
			attrs = append(attrs, "hint", "grant the application GroupMember.Read.All (groups) and RoleManagement.Read.Directory or Directory.Read.All (roles), with admin consent")
		}
	}
	e.logger.Warn("graph enrichment: lookup failed; documents go out without groups and roles until it works", attrs...)
}
