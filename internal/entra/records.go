package entra

import (
	"bytes"
	"errors"
)

// ErrNotObject marks a record (or top-level value) that is not a JSON object.
var ErrNotObject = errors.New("record is not a JSON object")

// ErrBadEnvelope marks an object whose "records" (Event Hubs) or "value"
// (Microsoft Graph) member is not an array. No audit record has such a
// member, so it is a broken envelope, not a record to classify and drop.
var ErrBadEnvelope = errors.New(`envelope's "records" or "value" member is not an array`)

// RawRecord is one audit record as bytes, with the line it began on.
type RawRecord struct {
	Data   []byte
	Line   int64
	Offset int // where Data starts within the value's Data
	// Err is set when the element cannot be a record (ErrNotObject); Data
	// then holds the element for the dead letter.
	Err error
}

// Records calls fn for each record of a valid value, in order: the elements
// of a {"records":[...]} or {"value":[...]} envelope, the elements of a
// top-level array (envelopes among them are opened too), or the value
// itself when it is a bare record. fn's error stops the walk and is returned.
func (v *Value) Records(fn func(RawRecord) error) error {
	switch {
	case v.Err != nil:
		return nil
	case v.kind == '{' && v.badEnvelope:
		return fn(RawRecord{Data: v.Data, Line: v.Line, Err: ErrBadEnvelope})
	case v.kind == '{' && !v.envelope:
		return fn(RawRecord{Data: v.Data, Line: v.Line})
	case v.kind == '{' || v.kind == '[':
		line, at := v.Line, 0
		for _, e := range v.elems {
			line += int64(bytes.Count(v.Data[at:e.start], nl))
			at = e.start
			r := RawRecord{Data: v.Data[e.start:e.end], Line: line, Offset: e.start}
			if r.Data[0] != '{' {
				r.Err = ErrNotObject
			} else if v.kind == '[' && mayBeEnvelope(r.Data) {
				if err := nested(r, fn); err != nil {
					return err
				}
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	default:
		return fn(RawRecord{Data: v.Data, Line: v.Line, Err: ErrNotObject})
	}
}

// mayBeEnvelope is a cheap test before rescanning an array element.
func mayBeEnvelope(b []byte) bool {
	return bytes.Contains(b, []byte(`"records"`)) || bytes.Contains(b, []byte(`"value"`))
}

// nested opens an envelope found inside a top-level array.
func nested(r RawRecord, fn func(RawRecord) error) error {
	sc := NewBytesScanner(r.Data, len(r.Data)+1)
	v, err := sc.Next()
	if err == nil && v.Err == nil && v.badEnvelope {
		r.Err = ErrBadEnvelope
		return fn(r)
	}
	if err != nil || v.Err != nil || !v.envelope {
		return fn(r)
	}
	v.Line = r.Line
	return v.Records(func(in RawRecord) error {
		in.Offset += r.Offset
		return fn(in)
	})
}
