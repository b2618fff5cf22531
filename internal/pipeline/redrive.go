package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/schema"
)

// Redriver is the step replay puts in front of the Decoder: a body that is
// a dead-letter line is replaced by its payload, at the position the dead
// letter recorded, so that a second failure still points at the original
// input. A sink dead letter's payload is an ECS document; it goes to the
// sinks only when it is one this exporter could have written. Every other
// body goes to the Decoder unchanged.
type Redriver struct {
	Decoder *Decoder
}

// maxNesting bounds how many dead letters around a dead letter are opened.
const maxNesting = 8

// redrivePrefix starts the error of a dead letter that could not be
// processed again; it is not repeated when that dead letter is re-driven.
const redrivePrefix = "re-drive: "

// Decode processes bodies in order, re-driving dead-letter lines.
func (r Redriver) Decode(bodies []stream.Body) Result {
	var res Result
	st := scratch.Get().(*decodeState)
	defer scratch.Put(st)
	for i := range bodies {
		b := &bodies[i]
		if b.Err == nil && deadletter.LooksLike(b.Data) {
			r.line(b, &res, st, 0)
			continue
		}
		r.Decoder.body(b, &res, st)
	}
	r.Decoder.enrich(res.Docs)
	return res
}

// line re-drives body b, which looks like a dead letter.
func (r Redriver) line(b *stream.Body, res *Result, st *decodeState, depth int) {
	d := r.Decoder
	dl, err := deadletter.Decode(b.Data)
	var ve *deadletter.VersionError
	switch {
	case errors.As(err, &ve):
		d.dead(res, deadletter.StageDecode, deadletter.ReasonUnsupportedVersion, b.Pos, fmt.Errorf("%s%w", redrivePrefix, err), b.Data)
		return
	case err != nil:
		// Shaped like one, but not a dead letter: ordinary input.
		d.body(b, res, st)
		return
	}
	pos := dl.Source
	if pos.Kind == "" {
		pos = b.Pos
	}
	payload, err := dl.Payload()
	switch {
	case err != nil:
		// The whole line is kept: nothing else holds what it held.
		d.dead(res, deadletter.StageDecode, deadletter.ReasonRedrive, pos, fmt.Errorf("%s%w", redrivePrefix, err), b.Data)
	case dl.Truncated:
		res.DeadLetters = append(res.DeadLetters, again(d.Now(), dl, pos, "the payload is truncated, the input cannot be processed again"))
	case dl.Raw == nil && dl.RawBase64 == "":
		res.DeadLetters = append(res.DeadLetters, again(d.Now(), dl, pos, "the dead letter holds no payload"))
	case depth < maxNesting && deadletter.LooksLike(payload):
		r.line(&stream.Body{Data: payload, Pos: pos}, res, st, depth+1)
	case dl.Stage == deadletter.StageSink:
		r.document(payload, pos, res)
	default:
		// The payload is what failed, one message: it fails (or not) as
		// a whole again.
		d.body(&stream.Body{Data: payload, Pos: pos}, res, st)
	}
}

// again is dl written anew: same stage, reason, position and payload
// (with its truncation, size and digest), with why it was not processed.
func again(now time.Time, dl deadletter.Record, pos stream.Position, why string) deadletter.Record {
	reason := dl.Reason
	if reason == "" {
		reason = deadletter.ReasonRedrive
		if dl.Truncated {
			reason = deadletter.ReasonTooLarge
		}
	}
	msg := dl.Error
	if !strings.HasPrefix(msg, redrivePrefix) {
		msg = redrivePrefix + why + ": " + msg
	}
	n := deadletter.New(now, dl.Stage, reason, pos, errors.New(msg), nil)
	n.Sink = dl.Sink
	n.Raw, n.RawBase64 = dl.Raw, dl.RawBase64
	n.Truncated, n.Size, n.SHA256 = dl.Truncated, dl.Size, dl.SHA256
	return n
}

// document emits a re-driven sink dead letter's document when it is valid.
func (r Redriver) document(data []byte, pos stream.Position, res *Result) {
	d := r.Decoder
	doc, err := ValidDocument(data)
	if err != nil {
		d.dead(res, deadletter.StageDecode, deadletter.ReasonInvalidDocument, pos, fmt.Errorf("re-driven document: %w", err), data)
		return
	}
	res.Counts.Records++
	d.emit(res, doc, pos)
}

// ValidDocument parses data as an ECS document and checks that it is one
// the exporter could have written: it follows schema/ecs-event.strict.schema.json
// (known fields only, an ASCII slug as event.action, kind, category, type,
// outcome and dataset from their fixed sets, an event.id) and its
// @timestamp parses.
func ValidDocument(data []byte) (ecs.Event, error) {
	sch, err := schema.Strict()
	if err != nil {
		return ecs.Event{}, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return ecs.Event{}, fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return ecs.Event{}, fmt.Errorf("does not follow the document schema: %s", schemaProblem(err))
	}
	var doc ecs.Event
	if err := json.Unmarshal(data, &doc); err != nil {
		return ecs.Event{}, fmt.Errorf("decode: %w", err)
	}
	if doc.Time, err = time.Parse(time.RFC3339Nano, doc.Timestamp); err != nil {
		return ecs.Event{}, fmt.Errorf("@timestamp: %w", err)
	}
	return doc, nil
}

// schemaProblem is a validation error in one line: the first failing
// location and what failed there.
func schemaProblem(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	lines := strings.Split(strings.TrimSpace(ve.Error()), "\n")
	return strings.TrimLeft(lines[len(lines)-1], "- ")
}
