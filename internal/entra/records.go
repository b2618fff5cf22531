package entra

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrNotObject marks a record (or top-level value) that is not a JSON object.
var ErrNotObject = errors.New("record is not a JSON object")

// ErrBadEnvelope marks an object whose "records" (Event Hubs) or "value"
// (Microsoft Graph) member is not an array. No audit record has such a
// member, so it is a broken envelope, not a record to classify and drop.
var ErrBadEnvelope = errors.New(`envelope's "records" or "value" member is not an array`)

// ErrNoRecords marks an array or envelope inside a value that holds no
// element: nothing to hand out, but not nothing to account for.
var ErrNoRecords = errors.New("nested envelope or array holds no records")

// maxOpenDepth bounds how many envelopes or arrays deep Records opens
// elements below the top-level value.
const maxOpenDepth = 8

// ErrTooDeep marks an envelope or array nested too deep to be opened.
var ErrTooDeep = fmt.Errorf("envelope or array nested more than %d deep: not opened", maxOpenDepth)

// RawRecord is one audit record as bytes, with the line it began on.
type RawRecord struct {
	Data   []byte
	Line   int64
	Offset int // where Data starts within the value's Data
	// Err is set when the element cannot be a record (ErrNotObject,
	// ErrBadEnvelope, ErrTooDeep, ErrNoRecords); Data then holds the element for the
	// dead letter.
	Err error
}

// Records calls fn for each record of a valid value, in order: the elements
// of every {"records":[...]} or {"value":[...]} array of an envelope, the
// elements of a top-level array, or the value itself when it is a bare
// record. Elements are opened in turn, up to maxOpenDepth deep, when they
// are arrays or objects with a "records" or "value" member (matched as
// encoding/json matches names) holding an object or array; an element
// whose such member holds a scalar is a record. Every element ends either
// as a record or as a RawRecord with Err set. fn's error stops the walk
// and is returned.
func (v *Value) Records(fn func(RawRecord) error) error {
	if v.Err != nil {
		return nil
	}
	return v.records(fn, 0, 0)
}

// records hands out the records of v, whose Data starts at offset base of
// the top-level value and which was opened depth levels below it.
func (v *Value) records(fn func(RawRecord) error, base, depth int) error {
	switch {
	case v.kind == '{' && v.badEnvelope:
		return fn(RawRecord{Data: v.Data, Line: v.Line, Offset: base, Err: ErrBadEnvelope})
	case v.kind == '{' && !v.envelope:
		return fn(RawRecord{Data: v.Data, Line: v.Line, Offset: base})
	case v.kind != '{' && v.kind != '[':
		return fn(RawRecord{Data: v.Data, Line: v.Line, Offset: base, Err: ErrNotObject})
	}
	line, at := v.Line, 0
	for _, e := range v.elems {
		line += int64(bytes.Count(v.Data[at:e.start], nl))
		at = e.start
		r := RawRecord{Data: v.Data[e.start:e.end], Line: line, Offset: base + e.start}
		switch {
		case e.kind == elemBadMember:
			r.Err = ErrBadEnvelope
		case e.kind == elemOpen || r.Data[0] == '[':
			if depth == maxOpenDepth {
				r.Err = ErrTooDeep
				break
			}
			if err := open(r, fn, depth+1); err != nil {
				return err
			}
			continue
		case r.Data[0] != '{':
			r.Err = ErrNotObject
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// open hands out the records of an element that is an array or may be an
// envelope, scanning it as a value of its own. One that does not scan
// (only its structure was checked) is a record like any other.
func open(r RawRecord, fn func(RawRecord) error, depth int) error {
	v, err := NewBytesScanner(r.Data, len(r.Data)+1).Next()
	if err != nil || v.Err != nil {
		if r.Data[0] != '{' {
			r.Err = ErrNotObject
		}
		return fn(r)
	}
	if (v.kind == '[' || v.envelope) && len(v.elems) == 0 {
		r.Err = ErrNoRecords
		return fn(r)
	}
	v.Line = r.Line
	return v.records(fn, r.Offset, depth)
}
