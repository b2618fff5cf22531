package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Decoder turns bodies into ECS documents and dead letters. It is the
// decode → classify → normalize part of the pipeline, with no I/O. It reads
// Entra input only: a record shaped like a dead letter is classified like
// any other (re-driving dead letters is Redriver's, which replay alone uses).
type Decoder struct {
	MaxBodyBytes int
	Catalog      *sspr.Catalog
	Normalize    sspr.Options
	Now          func() time.Time // dead-letter timestamps
	// Enrich, when set, adds what the records do not carry (where an
	// address is, the target user's groups) to each batch's documents.
	Enrich Enricher
}

// Enricher adds fields to the documents of one batch in place. It never
// adds, removes or reorders documents, never fails, and returns within a
// bounded time: what it cannot learn in that time it leaves out.
type Enricher interface {
	Enrich(docs []ecs.Event)
}

// Result is what one batch of bodies became.
type Result struct {
	Docs        []ecs.Event
	DocPos      []stream.Position // where each document's record was read
	DeadLetters []deadletter.Record
	// Counts tallies the records; DeadLettered stays 0 here: the
	// pipeline counts dead letters as it writes them.
	Counts stream.Counts
}

// decodeState is per-call scratch space.
type decodeState struct {
	fold []byte
}

// scratch is reused between batches: the prefilter folds every record.
var scratch = sync.Pool{New: func() any { return new(decodeState) }}

// Decode processes bodies in order.
func (d *Decoder) Decode(bodies []stream.Body) Result {
	var res Result
	st := scratch.Get().(*decodeState)
	defer scratch.Put(st)
	for i := range bodies {
		d.body(&bodies[i], &res, st)
	}
	d.enrich(res.Docs)
	return res
}

// enrich applies the Enricher, if any, to a batch's documents.
func (d *Decoder) enrich(docs []ecs.Event) {
	if d.Enrich != nil && len(docs) > 0 {
		d.Enrich.Enrich(docs)
	}
}

func (d *Decoder) dead(res *Result, stage string, reason deadletter.Reason, pos stream.Position, err error, payload []byte) {
	res.DeadLetters = append(res.DeadLetters, deadletter.New(d.Now(), stage, reason, pos, err, payload))
}

func (d *Decoder) body(b *stream.Body, res *Result, st *decodeState) {
	switch {
	case b.Form == stream.FormRecord:
		d.record(entra.RawRecord{Data: b.Data, Line: 1, Err: b.Err}, b.Pos, res, st)
	case b.Err != nil:
		d.failed(res, b.Pos, b.Err, b.Data)
	default:
		d.message(b, res, st)
	}
}

// errEmpty is the reason of a message that holds no record.
var errEmpty = errors.New("message holds no records")

// message decodes a body that is one message (an Event Hubs event, a Kafka
// message, a dead letter's payload). One bad message is one dead letter:
// the values before a value that fails are processed, and everything from
// that value to the end of the message is dead-lettered together, since
// the rest of a message that broke once cannot be trusted to split where
// its lines do.
func (d *Decoder) message(b *stream.Body, res *Result, st *decodeState) {
	sc := entra.NewBytesScanner(b.Data, d.MaxBodyBytes)
	next, located := 0, true // where the message's unread rest begins, if known
	records := 0
	for {
		v, err := sc.Next()
		if err != nil { // only io.EOF on an in-memory body
			break
		}
		if v.Err != nil {
			d.rest(res, b, &v, next, located)
			return
		}
		if off := offsetIn(b.Data, v.Data); off >= 0 {
			next = off + len(v.Data)
		} else {
			located = false
		}
		_ = v.Records(func(raw entra.RawRecord) error {
			records++
			d.record(raw, b.Pos.AtLine(raw.Line), res, st)
			return nil
		})
	}
	if records == 0 {
		d.dead(res, deadletter.StageDecode, deadletter.ReasonEmpty, b.Pos, errEmpty, b.Data)
	}
}

// rest dead-letters message b from the failed value v to its end. next is
// where the value after the last good one may begin; located is false when
// the scanner's values did not point into b (then the whole message is
// kept: a duplicate of what was delivered is better than a loss).
func (d *Decoder) rest(res *Result, b *stream.Body, v *entra.Value, next int, located bool) {
	start := offsetIn(b.Data, v.Data)
	pos := b.Pos.AtLine(v.Line)
	switch {
	case start >= 0:
	case located:
		start = skipBlank(b.Data, next)
	default:
		start, pos = 0, b.Pos
	}
	rest := b.Data[start:]
	r := deadletter.New(d.Now(), deadletter.StageDecode, reasonOf(v.Err), pos, v.Err, nil)
	if errors.Is(v.Err, entra.ErrTooLarge) {
		r.SetTruncated(d.keep(rest[:min(len(v.Data), len(rest))]), int64(len(rest)), sha256.Sum256(rest))
	} else {
		r.SetPayload(rest)
	}
	res.DeadLetters = append(res.DeadLetters, r)
}

// keep cuts the prefix of an oversize value so that its dead-letter line
// stays within the body limit even when every byte is escaped (\u00XX)
// and with room for the other keys: replaying the dead letters must not
// find their lines too large in turn. With the default limit it cuts
// nothing the scanner kept.
func (d *Decoder) keep(prefix []byte) []byte {
	limit := d.MaxBodyBytes
	if limit <= 0 {
		limit = entra.DefaultMaxBodyBytes
	}
	n := max(0, (limit-dlLineOverhead)/6)
	return prefix[:min(len(prefix), n)]
}

// dlLineOverhead bounds a dead-letter line's keys other than its payload.
const dlLineOverhead = 4 << 10

// offsetIn returns where part begins in msg, or -1 when part is not a
// slice of msg.
func offsetIn(msg, part []byte) int {
	if len(part) == 0 {
		return -1
	}
	off := cap(msg) - cap(part)
	if off < 0 || off+len(part) > len(msg) || &msg[off] != &part[0] {
		return -1
	}
	return off
}

// skipBlank returns the index of the first byte at or after i that the
// scanner would not skip between values (whitespace, byte-order marks).
func skipBlank(b []byte, i int) int {
	for i < len(b) {
		switch {
		case b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n':
			i++
		case bytes.HasPrefix(b[i:], utf8BOM):
			i += len(utf8BOM)
		default:
			return i
		}
	}
	return i
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// failed dead-letters a value the scanner could not use.
func (d *Decoder) failed(res *Result, pos stream.Position, err error, data []byte) {
	r := deadletter.New(d.Now(), deadletter.StageDecode, reasonOf(err), pos, err, nil)
	var tl *entra.TooLargeError
	if errors.As(err, &tl) {
		r.SetTruncated(d.keep(data), tl.Size, tl.SHA256)
	} else {
		r.SetPayload(data)
	}
	res.DeadLetters = append(res.DeadLetters, r)
}

// reasonOf is the reason code of an error of the scanner or of a source.
func reasonOf(err error) deadletter.Reason {
	switch {
	case errors.Is(err, entra.ErrTooLarge):
		return deadletter.ReasonTooLarge
	case errors.Is(err, entra.ErrNotObject):
		return deadletter.ReasonNotObject
	case errors.Is(err, entra.ErrBadEnvelope), errors.Is(err, entra.ErrTooDeep):
		return deadletter.ReasonBadEnvelope
	case errors.Is(err, entra.ErrNoRecords):
		return deadletter.ReasonEmpty
	}
	// A *entra.SyntaxError, or any other way a value failed to parse.
	return deadletter.ReasonInvalidJSON
}

func (d *Decoder) emit(res *Result, doc ecs.Event, pos stream.Position) {
	res.Counts.SSPR++
	if res.Counts.ByAction == nil {
		res.Counts.ByAction = map[string]int64{}
		res.Counts.ByOutcome = map[string]int64{}
	}
	res.Counts.ByAction[doc.Event.Action]++
	res.Counts.ByOutcome[doc.Event.Outcome]++
	res.Docs = append(res.Docs, doc)
	res.DocPos = append(res.DocPos, pos)
}

func (d *Decoder) record(raw entra.RawRecord, pos stream.Position, res *Result, st *decodeState) {
	res.Counts.Records++
	if raw.Err != nil {
		d.dead(res, deadletter.StageDecode, reasonOf(raw.Err), pos, raw.Err, raw.Data)
		return
	}
	if !d.Catalog.MayMatch(raw.Data, &st.fold) {
		res.Counts.Dropped++
		return
	}
	var rec entra.Record
	if err := json.Unmarshal(raw.Data, &rec); err != nil {
		// A field of an unexpected type does not stop encoding/json from
		// filling the rest; the record is usable when what normalization
		// needs is present.
		if !entra.IsTypeError(err) {
			d.dead(res, deadletter.StageDecode, deadletter.ReasonInvalidJSON, pos, fmt.Errorf("decode record: %w", err), raw.Data)
			return
		}
	}
	rec.Finish()
	act, verdict := sspr.Classify(d.Catalog, &rec)
	switch verdict {
	case sspr.Drop:
		res.Counts.Dropped++
		return
	case sspr.Unsupported:
		res.Counts.Dropped++
		res.Counts.Unsupported++
		return
	}
	doc, err := sspr.Normalize(raw.Data, &rec, act, d.Normalize)
	if err != nil {
		reason := deadletter.ReasonNormalize
		if errors.Is(err, sspr.ErrNoTime) {
			reason = deadletter.ReasonNoTime
		}
		d.dead(res, deadletter.StageNormalize, reason, pos, fmt.Errorf("normalize %q: %w", act.Name, err), raw.Data)
		return
	}
	d.emit(res, doc, pos)
}
