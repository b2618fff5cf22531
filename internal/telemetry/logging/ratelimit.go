package logging

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Rate limiting. Records of one event are written at most once per
// repeat interval (telemetry.log_repeat_interval); the ones held back are
// counted and summarised when the interval ends. Two records are of one
// event when they have the same level, the same message and the same
// identifying attributes, those attached with With included, in groups
// alike. Every attribute identifies (component, instance, partition, hub,
// topic, error text, status...) except volatile ones, which change from
// one record of an event to the next:
//
//   - durations and times (values of kind Duration or Time);
//   - attributes whose key, or its last word, is in volatileWords:
//     counts, sizes, attempts, stream positions, durations and times
//     written as numbers or text (attempt, pending, retry_in, offset,
//     sequence_number, elapsed...).
//
// A record that carries one of selfLimitedKeys is already limited by its
// component, at an interval of its own (output.elasticsearch.log_interval,
// the Kafka error_log_interval): it is always written, so that this
// interval holds instead of being stretched to the repeat interval.

// volatileWords, as an attribute key or its last word, make the
// attribute volatile.
var volatileWords = map[string]bool{
	"attempt": true, "attempts": true, "retries": true, "n": true, "count": true, "total": true,
	"pending": true, "held": true, "repeated": true, "size": true, "bytes": true, "len": true, "length": true,
	"offset": true, "sequence": true, "sequence_number": true, "seq": true, "lag": true,
	"age": true, "elapsed": true, "duration": true, "took": true, "latency": true, "wait": true, "backoff": true,
	"in": true, "within": true, "since": true, "until": true, "deadline": true, "at": true,
	"time": true, "timestamp": true, "ts": true,
}

// selfLimitedKeys mark a record its component writes at most once per an
// interval of its own and summarises itself.
var selfLimitedKeys = []string{"repeats_since_last_log", "next_log_within", "next_warning_within"}

// maxTracked bounds the distinct events the rate limiter remembers;
// beyond it records pass unlimited rather than memory growing.
const maxTracked = 4096

// volatile reports whether a changes between records of one event.
func volatile(a slog.Attr) bool {
	switch a.Value.Kind() {
	case slog.KindDuration, slog.KindTime:
		return true
	}
	return volatileWords[a.Key] || volatileWords[lastWord(a.Key)]
}

// lastWord returns the last word of an attribute key, lower-cased:
// "retry_in" → "in", "retryIn" → "in".
func lastWord(key string) string {
	start := 0
	for i := len(key) - 1; i > 0; i-- {
		c := key[i]
		if c == '_' || c == '.' || c == '-' || c == ' ' {
			start = i + 1
			break
		}
		if 'A' <= c && c <= 'Z' && 'a' <= key[i-1] && key[i-1] <= 'z' {
			start = i
			break
		}
	}
	w := key[start:]
	for i := 0; i < len(w); i++ {
		if c := w[i]; 'A' <= c && c <= 'Z' || c >= unicode.MaxASCII {
			return strings.ToLower(w)
		}
	}
	return w
}

// Kinds of the fields of an identity.
const (
	fieldMessage byte = iota + 1
	fieldKey
	fieldValue
	fieldGroup
	fieldEnd
)

// appendField appends a length-prefixed field, so that no two different
// sequences of fields give the same bytes.
func appendField(b []byte, kind byte, s string) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendIdentity appends what a adds to the identity of its record: its
// key and value, a group's members, nothing when it is volatile.
func appendIdentity(b []byte, a slog.Attr) []byte {
	v := a.Value
	if volatile(a) {
		return b
	}
	if v.Kind() == slog.KindGroup {
		b = appendField(b, fieldGroup, a.Key)
		for _, ga := range v.Group() {
			b = appendIdentity(b, ga)
		}
		return append(b, fieldEnd)
	}
	b = appendField(b, fieldKey, a.Key)
	b = append(b, fieldValue, byte(v.Kind()))
	switch v.Kind() {
	case slog.KindString:
		return appendField(b, fieldValue, v.String())
	case slog.KindInt64:
		return binary.AppendVarint(b, v.Int64())
	case slog.KindUint64:
		return binary.AppendUvarint(b, v.Uint64())
	case slog.KindFloat64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float64()))
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	}
	return appendField(b, fieldValue, fmt.Sprint(v.Any()))
}

// runner is the state Start and Close share.
type runner struct {
	mu     sync.Mutex
	closed bool
	stop   chan struct{} // closed by close
	runs   sync.WaitGroup
}

// enter counts a Start in, unless the handler is closed.
func (r *runner) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.runs.Add(1)
	return true
}

// close stops what every Start started and waits for it.
func (r *runner) close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	r.runs.Wait()
}

// window is one event's current interval.
type window struct {
	start time.Time
	held  int          // records held back in this interval
	last  slog.Record  // the last held-back record, redacted
	h     slog.Handler // the wrapped handler it would have gone to
}

type limiter struct {
	interval time.Duration
	now      func() time.Time

	mu     sync.Mutex
	seen   map[string]*window // by identity
	closed bool               // every record passes
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

// admit says whether a record with this identity passes and returns the
// summaries that are due, which are written before it.
func (l *limiter) admit(key []byte, r slog.Record, h slog.Handler) (bool, []summary) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return true, nil
	}
	due := l.expireLocked(now, false)
	if w := l.seen[string(key)]; w != nil {
		w.held++
		w.last = r.Clone()
		w.h = h
		return false, due
	}
	if len(l.seen) < maxTracked {
		l.seen[string(key)] = &window{start: now}
		if end := now.Add(l.interval); l.next.IsZero() || end.Before(l.next) {
			l.next = end
		}
	}
	return true, due
}

// close makes every later record pass.
func (l *limiter) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
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
