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
	"slices"
	"strconv"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// RepeatedKey is the attribute of a summary record: how many records of
// its event were held back since the one that was written.
const RepeatedKey = "repeated"

// DefaultRepeatInterval is how often records of one event are written at
// most.
const DefaultRepeatInterval = time.Minute

// Options configure a Handler.
type Options struct {
	// Redactor also replaces registered secret values; nil redacts only
	// the shapes secret.Redact knows.
	Redactor *secret.Redactor
	// RepeatInterval: records of one event (see the package's rate
	// limiting rule in ratelimit.go) are written at most once per
	// interval, the rest counted and summarised. Zero or negative turns
	// rate limiting off.
	RepeatInterval time.Duration
	// Now is the clock of the rate limiter (tests); time.Now when nil.
	Now func() time.Time
}

// Handler redacts and rate-limits records before handing them to the
// handler it wraps.
type Handler struct {
	inner slog.Handler
	red   *secret.Redactor
	// lim (nil when rate limiting is off) and run are shared by every
	// handler derived with With*.
	lim *limiter
	run *runner
	// ident is what the attributes and groups attached so far add to the
	// identity of a record (see ratelimit.go).
	ident []byte
}

// NewHandler wraps inner.
func NewHandler(inner slog.Handler, o Options) *Handler {
	h := &Handler{inner: inner, red: o.Redactor, run: &runner{stop: make(chan struct{})}}
	if h.red == nil {
		h.red = secret.NewRedactor()
	}
	if o.RepeatInterval > 0 {
		now := o.Now
		if now == nil {
			now = time.Now
		}
		h.lim = &limiter{interval: o.RepeatInterval, now: now, seen: map[string]*window{}}
	}
	return h
}

// Redactor returns the redactor, to register more secret values.
func (h *Handler) Redactor() *secret.Redactor { return h.red }

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// WithAttrs redacts attrs once, when they are attached.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	red := make([]slog.Attr, len(attrs))
	n.ident = slices.Clip(h.ident)
	for i, a := range attrs {
		red[i] = h.attr(a)
		n.ident = appendIdentity(n.ident, red[i])
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
	n.ident = appendField(slices.Clip(h.ident), fieldGroup, name)
	return &n
}

// Handle redacts r and writes it unless a record of the same event was
// written less than the repeat interval ago.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.red.Redact(r.Message), r.PC)
	if h.lim == nil {
		r.Attrs(func(a slog.Attr) bool {
			out.AddAttrs(h.attr(a))
			return true
		})
		return h.inner.Handle(ctx, out)
	}
	// Most identities fit here, which keeps them off the heap.
	var space [256]byte
	key := appendField(append(space[:0], h.ident...), fieldMessage, out.Message)
	key = strconv.AppendInt(key, int64(r.Level), 10)
	selfLimited := false
	r.Attrs(func(a slog.Attr) bool {
		a = h.attr(a)
		out.AddAttrs(a)
		key = appendIdentity(key, a)
		selfLimited = selfLimited || slices.Contains(selfLimitedKeys, a.Key)
		return true
	})
	if selfLimited {
		return h.inner.Handle(ctx, out)
	}
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

// Flush writes the summaries of every record held back so far.
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

// Start writes summaries as their interval ends even when no other record
// comes by to trigger them, in a goroutine of its own, until ctx is done
// (then it flushes) or Close. Whoever starts it calls Close, which waits
// for that goroutine, before the output goes away. After Close, Start
// starts nothing.
func (h *Handler) Start(ctx context.Context) {
	if !h.run.enter() {
		return
	}
	go func() {
		defer h.run.runs.Done()
		h.writeDue(ctx)
	}()
}

// writeDue is the loop of Start.
func (h *Handler) writeDue(ctx context.Context) {
	var tick <-chan time.Time
	if h.lim != nil {
		// Ticking four times per interval writes a summary at most a
		// quarter interval after it is due; ticks with nothing due cost
		// a comparison.
		t := time.NewTicker(max(h.lim.interval/4, time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			_ = h.Flush(context.WithoutCancel(ctx))
			return
		case <-h.run.stop:
			return
		case <-tick:
			for _, s := range h.lim.drain(false) {
				_ = s.emit(ctx)
			}
		}
	}
}

// Close stops what Start started and waits for it, then writes the summaries
// still held back. Records logged after Close are written at once, as
// nothing would write their summaries. Calling it again only flushes.
func (h *Handler) Close(ctx context.Context) error {
	h.run.close()
	if h.lim != nil {
		h.lim.close()
	}
	return h.Flush(ctx)
}

// attr returns a with secrets removed: the whole value when the key looks
// secret, secret shapes and registered values inside strings, errors and
// values that print as text.
func (h *Handler) attr(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	if secret.IsKey(a.Key) && !emptyValue(a.Value) {
		a.Value = slog.StringValue(secret.Redacted)
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

// Format names for New.
const (
	FormatAuto = "auto" // text on a terminal, JSON otherwise
	FormatJSON = "json"
	FormatText = "text"
)

// New returns a logger writing to w in format (FormatAuto when empty) at
// level, through a Handler with o, and that Handler for Flush, Start and
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
