package pipeline

import (
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
// decode → classify → normalize part of the pipeline, with no I/O.
type Decoder struct {
	MaxBodyBytes int
	Catalog      *sspr.Catalog
	Normalize    sspr.Options
	Now          func() time.Time // dead-letter timestamps
}

// Result is what one batch of bodies became.
type Result struct {
	Docs        []ecs.Event
	DocPos      []stream.Position // where each document's record was read
	DeadLetters []deadletter.Record
	Counts      Counts
}

// Counts tallies records by what happened to them.
type Counts struct {
	Records     int64 // records read (SSPR, dropped and dead-lettered ones)
	SSPR        int64
	Dropped     int64 // not SSPR (includes Unsupported)
	Unsupported int64 // SSPR activities in the retired preview schema
	ByAction    map[string]int64
	ByOutcome   map[string]int64
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Records += o.Records
	c.SSPR += o.SSPR
	c.Dropped += o.Dropped
	c.Unsupported += o.Unsupported
	for k, v := range o.ByAction {
		if c.ByAction == nil {
			c.ByAction = map[string]int64{}
		}
		c.ByAction[k] += v
	}
	for k, v := range o.ByOutcome {
		if c.ByOutcome == nil {
			c.ByOutcome = map[string]int64{}
		}
		c.ByOutcome[k] += v
	}
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
	return res
}

func (d *Decoder) dead(res *Result, stage string, pos stream.Position, err error, payload []byte) {
	res.DeadLetters = append(res.DeadLetters, deadletter.New(d.Now(), stage, pos, err, payload))
}

func (d *Decoder) body(b *stream.Body, res *Result, st *decodeState) {
	switch {
	case b.Form == stream.FormRecord:
		d.record(entra.RawRecord{Data: b.Data, Line: 1, Err: b.Err}, b.Pos, res, st)
		return
	case b.Err != nil:
		d.failed(res, b.Pos, b.Err, b.Data)
		return
	case b.Form == stream.FormDocument:
		d.document(b.Data, b.Pos, res)
		return
	}
	sc := entra.NewBytesScanner(b.Data, d.MaxBodyBytes)
	for {
		v, err := sc.Next()
		if err != nil { // only io.EOF on an in-memory body
			return
		}
		pos := b.Pos.AtLine(v.Line)
		if v.Err != nil {
			d.failed(res, pos, v.Err, v.Data)
			continue
		}
		_ = v.Records(func(raw entra.RawRecord) error {
			d.record(raw, b.Pos.AtLine(raw.Line), res, st)
			return nil
		})
	}
}

// failed dead-letters a value the scanner could not use.
func (d *Decoder) failed(res *Result, pos stream.Position, err error, data []byte) {
	r := deadletter.New(d.Now(), deadletter.StageDecode, pos, err, nil)
	var tl *entra.TooLargeError
	if errors.As(err, &tl) {
		r.SetTruncated(data, tl.Size, tl.SHA256)
	} else {
		r.SetPayload(data)
	}
	res.DeadLetters = append(res.DeadLetters, r)
}

// redrive processes the payload of a dead-letter line again. A sink dead
// letter holds an ECS document; the others hold Entra input. Positions are
// those the dead letter recorded, so a second failure still points at the
// original input.
func (d *Decoder) redrive(dl deadletter.Record, at stream.Position, res *Result, st *decodeState) {
	payload, err := dl.Payload()
	if err != nil || dl.Truncated {
		if err == nil {
			err = errors.New("dead letter holds a truncated payload")
		}
		d.dead(res, deadletter.StageDecode, at, fmt.Errorf("re-drive: %w", err), nil)
		return
	}
	body := stream.Body{Data: payload, Pos: dl.Source}
	if dl.Stage == deadletter.StageSink {
		body.Form = stream.FormDocument
	}
	if body.Pos.Kind == "" {
		body.Pos = at
	}
	d.body(&body, res, st)
}

// document accepts an ECS document as it is (a re-driven sink dead letter).
func (d *Decoder) document(data []byte, pos stream.Position, res *Result) {
	var doc ecs.Event
	err := json.Unmarshal(data, &doc)
	if err == nil {
		doc.Time, err = time.Parse(time.RFC3339Nano, doc.Timestamp)
	}
	if err == nil && (doc.Event.ID == "" || doc.Event.Action == "") {
		err = errors.New("document has no event.id or event.action")
	}
	if err != nil {
		d.dead(res, deadletter.StageDecode, pos, fmt.Errorf("re-driven document: %w", err), data)
		return
	}
	res.Counts.Records++
	d.emit(res, doc, pos)
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
	if deadletter.LooksLike(raw.Data) {
		if dl, ok := deadletter.Parse(raw.Data); ok {
			d.redrive(dl, pos, res, st)
			return
		}
	}
	res.Counts.Records++
	if raw.Err != nil {
		d.dead(res, deadletter.StageDecode, pos, raw.Err, raw.Data)
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
			d.dead(res, deadletter.StageDecode, pos, fmt.Errorf("decode record: %w", err), raw.Data)
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
		d.dead(res, deadletter.StageNormalize, pos, fmt.Errorf("normalize %q: %w", act.Name, err), raw.Data)
		return
	}
	d.emit(res, doc, pos)
}
