// Package entra reads Microsoft Entra audit records out of every shape they
// arrive in: Event Hubs bodies ({"records":[...]}), one body per line,
// storage-account archives (one record per line, CRLF, BOM), bare records,
// JSON arrays, Microsoft Graph pages ({"value":[...]}) and bare
// directoryAudit objects, and pretty-printed JSON spanning many lines.
//
// The Scanner checks each top-level value in one pass and, in the same
// pass, notes where the records of an envelope begin and end, so that no
// record is parsed unless it may be an SSPR event. The grammar is checked
// at the top level and at the level of the envelope; inside records only
// the structure is (terminated strings, matching brackets): records that
// may be SSPR events are parsed fully afterwards, the others are dropped.
package entra

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// DefaultMaxBodyBytes is the largest top-level value held in memory.
const DefaultMaxBodyBytes = 16 << 20

// truncatedKeep is how much of an oversize value is kept for the dead letter.
const truncatedKeep = 64 << 10

// ErrTooLarge marks a top-level value larger than the configured maximum.
var ErrTooLarge = errors.New("value larger than max_body_bytes")

// TooLargeError describes an oversize value: it matches ErrTooLarge with
// errors.Is and carries the whole value's size and digest.
type TooLargeError struct {
	Size   int64
	SHA256 [sha256.Size]byte
	Detail string // why else it is unusable, if anything
}

func (e *TooLargeError) Error() string {
	msg := fmt.Sprintf("%v: %d bytes, sha256 %x", ErrTooLarge, e.Size, e.SHA256)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// SyntaxError is a top-level value that is not valid JSON.
type SyntaxError struct {
	Offset int64 // byte offset in the stream where the problem was found
	Line   int64 // line of that byte
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at line %d (byte %d): %s", e.Line, e.Offset, e.Msg)
}

// Value is one top-level JSON value of a stream, or what was read of one
// that could not be used.
type Value struct {
	Data []byte // valid until the next call to Next
	Line int64  // 1-based line where the value began
	// Err is set when Data is not a complete value: a *SyntaxError
	// (Data is what was read of it) or ErrTooLarge (Data is its first bytes,
	// Size and SHA256 describe all of it).
	Err    error
	Size   int64
	SHA256 [sha256.Size]byte

	// elems are the spans of the records found while scanning: the elements
	// of a "records"/"value" envelope array or of a top-level array.
	elems       []span
	envelope    bool // elems came from an object's records/value array
	badEnvelope bool // an object's records/value member is not an array
	kind        byte // '{', '[', or 0 for a scalar
}

type span struct{ start, end int }

// Scanner reads top-level JSON values from a byte stream.
type Scanner struct {
	r       io.Reader
	max     int
	buf     []byte
	start   int   // start of unconsumed data in buf
	end     int   // end of data in buf
	base    int64 // stream offset of buf[0]
	line    int64 // line number at buf[start]
	eof     bool
	readErr error
	elems   []span
}

// NewScanner returns a scanner over r. maxBody <= 0 means DefaultMaxBodyBytes.
func NewScanner(r io.Reader, maxBody int) *Scanner {
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	return &Scanner{r: r, max: maxBody, line: 1}
}

// NewBytesScanner returns a scanner over an in-memory body; values alias b.
func NewBytesScanner(b []byte, maxBody int) *Scanner {
	s := NewScanner(nil, maxBody)
	s.buf = b
	s.end = len(b)
	s.eof = true
	return s
}

// readSize is the least free space fill reads into. Reading large chunks
// keeps refills (and the moves of a partly read value they may need) rare.
const readSize = 256 << 10

// fill reads more input. Data before keep may be dropped: when the buffer
// has too little room left, buf[keep:] is moved to the front (growing the
// buffer if that still leaves too little). It returns the shift applied to
// indices, and false when no more input can be had.
func (s *Scanner) fill(keep int) (int, bool) {
	if s.eof || s.r == nil {
		return 0, false
	}
	shift := 0
	if len(s.buf)-s.end < readSize {
		if keep > 0 {
			n := copy(s.buf, s.buf[keep:s.end])
			s.base += int64(keep)
			s.end = n
			s.start -= keep
			shift = keep
		}
		if len(s.buf)-s.end < readSize {
			nb := make([]byte, max(2*len(s.buf), s.end+readSize, 4*readSize))
			copy(nb, s.buf[:s.end])
			s.buf = nb
		}
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if err != nil {
		if err != io.EOF {
			s.readErr = err
		}
		s.eof = true
	}
	if n == 0 && s.eof {
		return shift, false
	}
	return shift, true
}

// Next returns the next top-level value. It returns io.EOF at the end of the
// input and a non-nil error only when reading the input failed. Values that
// fail to parse are returned with Err set; scanning then resumes at the
// start of the line after the one where the failed value began.
func (s *Scanner) Next() (Value, error) {
	for {
		// Skip whitespace and byte-order marks between values.
		for {
			for s.start < s.end {
				c := s.buf[s.start]
				if c == '\n' {
					s.line++
				} else if c == 0xEF && s.start+2 < s.end && s.buf[s.start+1] == 0xBB && s.buf[s.start+2] == 0xBF {
					s.start += 2
				} else if c == 0xEF && s.start+2 >= s.end && !s.eof {
					break
				} else if c != ' ' && c != '\t' && c != '\r' {
					goto value
				}
				s.start++
			}
			if _, ok := s.fill(s.start); !ok {
				if s.readErr != nil {
					return Value{}, fmt.Errorf("read input: %w", s.readErr)
				}
				if s.start < s.end { // a lone partial BOM at the end
					goto value
				}
				return Value{}, io.EOF
			}
		}
	value:
		v, done := s.scanValue()
		if done {
			return v, nil
		}
	}
}

// scanValue scans the value starting at s.start. done is false when nothing
// was produced (cannot happen today, kept for clarity of the loop).
func (s *Scanner) scanValue() (Value, bool) {
	p := parser{s: s}
	vstart := s.start
	line := s.line
	endPos, err := p.run(vstart)
	// p.run may have shifted the buffer; recompute the start.
	vstart = s.start
	if err == nil && endPos-vstart > s.max {
		err = ErrTooLarge
	}
	if err == nil {
		data := s.buf[vstart:endPos]
		v := Value{Data: data, Line: line, Size: int64(len(data)), kind: data[0], elems: p.elems, envelope: p.envelope, badEnvelope: p.badEnvelope && !p.envelope}
		s.line += int64(bytes.Count(data, nl))
		s.start = endPos
		return v, true
	}
	if errors.Is(err, ErrTooLarge) {
		return s.skipOversize(vstart, line), true
	}
	// Syntax error. Scanning resumes on the next line, so everything after
	// the value's first line is read again; the dead letter holds that
	// first line, which nothing else will see.
	se := err.(*SyntaxError)
	eol := bytes.IndexByte(s.buf[vstart:s.end], '\n')
	for eol < 0 && !s.eof && s.end-vstart < s.max {
		shift, ok := s.fill(vstart)
		vstart -= shift
		if !ok {
			break
		}
		eol = bytes.IndexByte(s.buf[vstart:s.end], '\n')
	}
	resume := vstart + eol + 1
	longLine := false
	if eol < 0 {
		// No newline: the rest of the input (up to the limit) is one line.
		eol = s.end - vstart
		resume = s.end
		longLine = !s.eof
	}
	data := bytes.TrimRight(s.buf[vstart:vstart+eol], " \t\r\n")
	s.line = line + 1
	s.start = resume
	if longLine {
		s.skipLine()
	}
	return Value{Data: data, Line: line, Err: se, Size: int64(len(data))}, true
}

var nl = []byte{'\n'}

// skipLine discards input up to and including the next newline.
func (s *Scanner) skipLine() {
	for {
		if i := bytes.IndexByte(s.buf[s.start:s.end], '\n'); i >= 0 {
			s.start += i + 1
			return
		}
		s.start = s.end
		if _, ok := s.fill(s.start); !ok {
			return
		}
	}
}

// skipOversize consumes a value that is larger than the limit without
// holding it: it keeps its first bytes, hashes all of it, and follows its
// structure only as far as needed to find where it ends.
func (s *Scanner) skipOversize(vstart int, line int64) Value {
	h := sha256.New()
	keep := min(truncatedKeep, s.max)
	if keep > s.end-vstart {
		keep = s.end - vstart
	}
	prefix := append([]byte(nil), s.buf[vstart:vstart+keep]...)
	var st skipState
	size := int64(0)
	pos := vstart
	for {
		n, done, bad := st.advance(s.buf[pos:s.end])
		chunk := s.buf[pos : pos+n]
		h.Write(chunk)
		size += int64(n)
		s.line += int64(bytes.Count(chunk, nl))
		pos += n
		if done || bad {
			s.start = pos
			v := s.tooLarge(prefix, size, h, line)
			if bad {
				v.Err.(*TooLargeError).Detail = "and not valid JSON"
			}
			return v
		}
		s.start = pos
		if _, ok := s.fill(pos); !ok {
			v := s.tooLarge(prefix, size, h, line)
			v.Err.(*TooLargeError).Detail = "and cut off at end of input"
			return v
		}
		pos = s.start
	}
}

func (s *Scanner) tooLarge(prefix []byte, size int64, h hash.Hash, line int64) Value {
	if int64(len(prefix)) > size {
		prefix = prefix[:size]
	}
	v := Value{Data: prefix, Line: line, Size: size}
	h.Sum(v.SHA256[:0])
	v.Err = &TooLargeError{Size: size, SHA256: v.SHA256}
	return v
}

// skipState follows JSON strings and nesting byte by byte.
type skipState struct {
	depth    int
	inString bool
	escape   bool
	started  bool
}

// advance consumes b and returns how many bytes belong to the value, whether
// the value ended, and whether its structure was found broken.
func (st *skipState) advance(b []byte) (n int, done, bad bool) {
	for i, c := range b {
		switch {
		case st.inString:
			if st.escape {
				st.escape = false
			} else if c == '\\' {
				st.escape = true
			} else if c == '"' {
				st.inString = false
				if st.depth == 0 {
					return i + 1, true, false
				}
			}
		case c == '"':
			st.inString = true
			st.started = true
		case c == '{' || c == '[':
			st.depth++
			st.started = true
		case c == '}' || c == ']':
			st.depth--
			if st.depth < 0 {
				return i, true, true
			}
			if st.depth == 0 {
				return i + 1, true, false
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',':
			if st.depth == 0 && st.started {
				return i, true, false
			}
		default:
			st.started = true
		}
	}
	return len(b), false, false
}
