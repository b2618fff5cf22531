// Package logging sets up the process logger: a slog.Handler wrapper that
// redacts secrets from every message and attribute and rate-limits
// repeated records, over JSON (or, on a terminal, text) output.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// ComponentKey is the attribute that names the part of the exporter a
// record comes from; it is part of what makes records identical.
const ComponentKey = "component"

// RepeatedKey is the attribute of a summary record: how many identical
// records were held back since the one that was written.
const RepeatedKey = "repeated"

// DefaultRepeatInterval is how often identical records are written at most.
const DefaultRepeatInterval = time.Minute

// maxTracked bounds the distinct records the rate limiter remembers;
// beyond it records pass unlimited rather than memory growing.
const maxTracked = 4096

// Options configure a Handler.
type Options struct {
	// Redactor also replaces registered secret values; nil redacts only
	// the shapes secret.Redact knows.
	Redactor *Redactor
	// RepeatInterval: identical records (same level, message and
	// component) are written at most once per interval, the rest counted
	// and summarised. Zero or negative turns rate limiting off.
	RepeatInterval time.Duration
	// Now is the clock of the rate limiter (tests); time.Now when nil.
	Now func() time.Time
}

// Handler redacts and rate-limits records before handing them to the
// handler it wraps.
type Handler struct {
	inner     slog.Handler
	red       *Redactor
	lim       *limiter // shared by every handler derived with With*
	component string
	grouped   bool // attributes now go into a group
}

// NewHandler wraps inner.
func NewHandler(inner slog.Handler, o Options) *Handler {
	h := &Handler{inner: inner, red: o.Redactor}
	if h.red == nil {
		h.red = &Redactor{}
	}
	if o.RepeatInterval > 0 {
		now := o.Now
		if now == nil {
			now = time.Now
		}
		h.lim = &limiter{interval: o.RepeatInterval, now: now, seen: map[recordKey]*window{}}
	}
	return h
}

// Redactor returns the redactor, to register more secret values.
func (h *Handler) Redactor() *Redactor { return h.red }

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// WithAttrs redacts attrs once, when they are attached.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
		if !h.grouped && a.Key == ComponentKey {
			n.component = a.Value.Resolve().String()
		}
	}
	n.inner = h.inner.WithAttrs(red)
	return &n
}

// WithGroup starts a group in the wrapped handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.inner = h.inner.WithGroup(name)
	n.grouped = true
	return &n
}

// Handle redacts r and writes it unless an identical record was written
// less than the repeat interval ago.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.red.Redact(r.Message), r.PC)
	component := h.component
	r.Attrs(func(a slog.Attr) bool {
		if !h.grouped && a.Key == ComponentKey {
			component = a.Value.Resolve().String()
		}
		out.AddAttrs(h.attr(a))
		return true
	})
	if h.lim == nil {
		return h.inner.Handle(ctx, out)
	}
	key := recordKey{level: r.Level, msg: r.Message, component: component}
	pass, due := h.lim.admit(key, out, h.inner)
	for _, s := range due {
		// A summary that cannot be written is not the caller's problem:
		// the record it was asked to write is.
		_ = s.emit(ctx)
	}
	if !pass {
		return nil
	}
	return h.inner.Handle(ctx, out)
}

// Flush writes the summaries of every record held back so far, e.g. at
// shutdown.
func (h *Handler) Flush(ctx context.Context) error {
	if h.lim == nil {
		return nil
	}
	var errs []error
	for _, s := range h.lim.drain(true) {
		if err := s.emit(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("log flush: %w", err)
	}
	return nil
}

// Run writes summaries as their interval ends even when no other record
// comes by to trigger them, until ctx is done; then it flushes.
func (h *Handler) Run(ctx context.Context) {
	if h.lim == nil {
		<-ctx.Done()
		return
	}
	// Ticking four times per interval writes a summary at most a quarter
	// interval after it is due; ticks with nothing due cost a comparison.
	t := time.NewTicker(max(h.lim.interval/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = h.Flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			for _, s := range h.lim.drain(false) {
				_ = s.emit(ctx)
			}
		}
	}
}

// attr returns a with secrets removed: the whole value when the key looks
// secret, secret shapes and registered values inside strings, errors and
// values that print as text.
func (h *Handler) attr(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	if secret.IsKey(a.Key) && !emptyValue(a.Value) {
		a.Value = slog.StringValue(Mask)
		return a
	}
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.red.Redact(a.Value.String()))
	case slog.KindGroup:
		g := a.Value.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = h.attr(ga)
		}
		a.Value = slog.GroupValue(out...)
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			// Both built-in handlers print an error as its Error() text.
			a.Value = slog.StringValue(h.red.Redact(v.Error()))
		case fmt.Stringer:
			if s := v.String(); h.red.Redact(s) != s {
				a.Value = slog.StringValue(h.red.Redact(s))
			}
		case []byte:
			if s := string(v); h.red.Redact(s) != s {
				a.Value = slog.StringValue(h.red.Redact(s))
			}
		default:
			// Structs and maps are printed by the handler as they are;
			// only when their printed form holds a secret is it replaced
			// by the redacted text.
			if s := fmt.Sprintf("%+v", v); h.red.Redact(s) != s {
				a.Value = slog.StringValue(h.red.Redact(s))
			}
		}
	}
	return a
}

func emptyValue(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindString:
		return v.String() == ""
	case slog.KindAny:
		return v.Any() == nil
	}
	return false
}

// recordKey is what makes records identical for rate limiting.
type recordKey struct {
	level     slog.Level
	msg       string
	component string
}

// window is one key's current interval.
type window struct {
	start time.Time
	held  int          // records held back in this interval
	last  slog.Record  // the last held-back record, redacted
	h     slog.Handler // the wrapped handler it would have gone to
}

type limiter struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[recordKey]*window
	// next is when the oldest window ends; until then no window can have
	// ended and the map is not walked.
	next time.Time
}

// summary is a record to write for a window that held records back.
type summary struct {
	h slog.Handler
	r slog.Record
}

func (s summary) emit(ctx context.Context) error { return s.h.Handle(ctx, s.r) }

// admit says whether a record passes and returns the summaries that are
// due, which are written before it.
func (l *limiter) admit(key recordKey, r slog.Record, h slog.Handler) (bool, []summary) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	due := l.expireLocked(now, false)
	if w := l.seen[key]; w != nil {
		w.held++
		w.last = r.Clone()
		w.h = h
		return false, due
	}
	if len(l.seen) < maxTracked {
		l.seen[key] = &window{start: now}
		if end := now.Add(l.interval); l.next.IsZero() || end.Before(l.next) {
			l.next = end
		}
	}
	return true, due
}

// drain returns summaries of windows that ended (all windows when all).
func (l *limiter) drain(all bool) []summary {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expireLocked(now, all)
}

// expireLocked ends windows older than the interval (or all), returning a
// summary for each that held records back.
func (l *limiter) expireLocked(now time.Time, all bool) []summary {
	if !all && (l.next.IsZero() || now.Before(l.next)) {
		return nil
	}
	var out []summary
	l.next = time.Time{}
	for k, w := range l.seen {
		if !all && now.Sub(w.start) < l.interval {
			if end := w.start.Add(l.interval); l.next.IsZero() || end.Before(l.next) {
				l.next = end
			}
			continue
		}
		delete(l.seen, k)
		if w.held == 0 {
			continue
		}
		r := slog.NewRecord(now, w.last.Level, w.last.Message+" (repeated "+strconv.Itoa(w.held)+" times)", w.last.PC)
		w.last.Attrs(func(a slog.Attr) bool {
			r.AddAttrs(a)
			return true
		})
		r.AddAttrs(slog.Int(RepeatedKey, w.held), slog.Duration("repeat_interval", l.interval))
		out = append(out, summary{h: w.h, r: r})
	}
	return out
}

// Format names for New.
const (
	FormatAuto = "auto" // text on a terminal, JSON otherwise
	FormatJSON = "json"
	FormatText = "text"
)

// New returns a logger writing to w in format (FormatAuto when empty) at
// level, through a Handler with o, and that Handler for Flush, Run and
// registering secrets.
func New(w io.Writer, format string, level slog.Leveler, o Options) (*slog.Logger, *Handler) {
	hopts := &slog.HandlerOptions{Level: level}
	var inner slog.Handler
	if resolveFormat(format, w) == FormatText {
		inner = slog.NewTextHandler(w, hopts)
	} else {
		inner = slog.NewJSONHandler(w, hopts)
	}
	h := NewHandler(inner, o)
	return slog.New(h), h
}

func resolveFormat(format string, w io.Writer) string {
	switch format {
	case FormatJSON, FormatText:
		return format
	}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return FormatText
		}
	}
	return FormatJSON
}
