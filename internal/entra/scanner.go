// Package entra reads Microsoft Entra audit records out of every shape they
// arrive in: Event Hubs bodies ({"records":[...]}), one body per line,
// storage-account archives (one record per line, CRLF, BOM), bare records,
// JSON arrays, Microsoft Graph pages ({"value":[...]}) and bare
// directoryAudit objects, envelopes nested in one another, and
// pretty-printed JSON spanning many lines.
//
// The Scanner checks each top-level value in one pass and, in the same
// pass, notes where the records of an envelope begin and end, so that no
// record is parsed unless it may be an SSPR event. The grammar is checked
// at the top level and at the level of the envelope; inside records only
// the structure is (terminated strings, matching brackets, and no line
// break between two values): records that may be SSPR events are parsed
// fully afterwards, the others are dropped.
//
// Input that is not a usable value fails without taking what follows it
// along. A value that fails is given up by its first line, and reading
// resumes on the next line: the lines after the first are still in memory
// (a value never holds more than max_body_bytes), so nothing is read twice
// from the input. A line longer than max_body_bytes is given up whole, as
// its first bytes with the size and SHA-256 of all of it. A run of input
// that is not JSON text at all (UTF-16, gzip, binary or a log line) is
// given up as one piece, up to the next line that starts a JSON object or
// array.
package entra

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"unicode/utf8"
)

// DefaultMaxBodyBytes is the largest top-level value held in memory.
const DefaultMaxBodyBytes = 16 << 20

// truncatedKeep is how much of an oversize value is kept for the dead letter.
const truncatedKeep = 64 << 10

// maxNesting bounds how many open brackets a failed value leaves to
// remember (see remember): encoding/json refuses deeper values anyway.
const maxNesting = 10000

// ErrTooLarge marks a top-level value larger than the configured maximum.
var ErrTooLarge = errors.New("value larger than max_body_bytes")

// ErrPending is what a reader of input that is still being written (a file
// being followed) returns when it has no more bytes for now. The scanner
// then settles a value left open at that point if what it read shows the
// value was cut short (see Next), and otherwise reads again: the reader
// waits for more input on that next call.
var ErrPending = errors.New("no more input for now")

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
	// Err is set when Data is not a complete value: a *SyntaxError (Data
	// is what was given up: as a rule the value's first line, or a whole
	// run of input that is not JSON text) or a *TooLargeError (Data is
	// its first bytes, Size and SHA256 describe all of it: the line, or
	// the run).
	Err    error
	Size   int64
	SHA256 [sha256.Size]byte

	// elems are the spans of the records found while scanning: the elements
	// of "records"/"value" envelope arrays or of a top-level array.
	elems       []span
	envelope    bool // elems came from an object's records/value arrays
	badEnvelope bool // an object's records/value member is not an array
	kind        byte // '{', '[', or 0 for a scalar
}

// Kinds of span.
const (
	elemPlain     = iota // a record, or a scalar
	elemOpen             // an object that may be an envelope: opened (as arrays are)
	elemBadMember        // a records/value member that is not an array
)

type span struct {
	start, end int
	kind       byte
}

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
	idle    bool // the last read had nothing for now (ErrPending)
	readErr error
	elems   []span
	// doomed are values known to fail before they are scanned again,
	// by stream offset (see remember).
	doomed []doomed
	// regions are the stream offsets where the failed values enclosing
	// the current position failed, innermost last (see failLine).
	regions []int64
}

type doomed struct {
	off int64
	err error
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
// indices, and false when no more input can be had, for good or, with
// s.idle set, for now.
func (s *Scanner) fill(keep int) (int, bool) {
	s.idle = false
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
	switch {
	case err == nil:
	case errors.Is(err, ErrPending):
		s.idle = n == 0
	case err == io.EOF:
		s.eof = true
	default:
		s.readErr = err
		s.eof = true
	}
	return shift, n > 0 || !s.eof && !s.idle
}

// fillWait is fill for callers with nothing to settle when the input
// pauses: it reads again, and the reader then waits for more.
func (s *Scanner) fillWait(keep int) (int, bool) {
	total := 0
	for {
		shift, ok := s.fill(keep)
		keep -= shift
		total += shift
		if ok || !s.idle {
			return total, ok
		}
	}
}

// Next returns the next top-level value. It returns io.EOF at the end of the
// input and a non-nil error only when reading the input failed. Values that
// fail to parse are returned with Err set; scanning then resumes at the
// start of the line after the one where the failed value began.
//
// A value may span lines. It fails when it breaks the grammar, when the
// input ends inside it, or when it does not end within max_body_bytes; a
// line break between two values with no ',' between them (where a cut
// line meets the next value) breaks the grammar even inside records. When
// a reader says ErrPending, a value still open is taken as cut short if it
// spans lines and its last line, complete, is a JSON object or array of its
// own starting at the line's first byte: a value being written goes on past
// such a line, a line cut short is followed by one. Otherwise the scanner
// waits for more input.
func (s *Scanner) Next() (Value, error) {
	if !s.skipBlank() {
		if s.readErr != nil {
			return Value{}, fmt.Errorf("read input: %w", s.readErr)
		}
		return Value{}, io.EOF
	}
	v, ok := s.scanValue()
	if !ok {
		return Value{}, fmt.Errorf("read input: %w", s.readErr)
	}
	return v, nil
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// skipBlank moves past whitespace and byte-order marks between values. It
// returns false at the end of the input.
func (s *Scanner) skipBlank() bool {
	for {
	scan:
		for s.start < s.end {
			switch c := s.buf[s.start]; {
			case c == '\n':
				s.line++
			case c == ' ' || c == '\t' || c == '\r':
			case bytes.HasPrefix(s.buf[s.start:s.end], bom):
				s.start += 2
			case c == 0xEF && s.end-s.start < len(bom) && !s.eof:
				break scan // perhaps a byte-order mark: see the rest
			default:
				return true
			}
			s.start++
		}
		if _, ok := s.fillWait(s.start); !ok {
			return s.start < s.end // a lone partial BOM at the end
		}
	}
}

// scanValue scans the value starting at s.start. It returns false when
// reading the input failed inside the value.
func (s *Scanner) scanValue() (Value, bool) {
	vstart, line := s.start, s.line
	if err := s.doomedAt(vstart); err != nil {
		return s.take(vstart, line, false, err, err.Error())
	}
	if msg, ok := s.sniff(); ok {
		cause := &SyntaxError{Offset: s.base + int64(s.start), Line: line, Msg: msg}
		return s.take(s.start, line, true, cause, msg)
	}
	p := parser{s: s}
	endPos, err := p.run(s.start)
	// p.run may have shifted the buffer; recompute the start.
	vstart = s.start
	if err != nil && s.readErr != nil {
		return Value{}, false
	}
	se, _ := err.(*SyntaxError) // p.run's errors are not wrapped
	// Beyond the limit the outcome must not depend on how much the reads
	// happened to bring in: whatever was found there, the limit was hit.
	over := err == nil && endPos-vstart > s.max || errors.Is(err, ErrTooLarge) ||
		se != nil && se.Offset-s.base-int64(vstart) >= int64(s.max)
	switch {
	case over:
		return s.overLimit(vstart, line)
	case err == nil:
		data := s.buf[vstart:endPos]
		v := Value{Data: data, Line: line, Size: int64(len(data)), kind: data[0], elems: p.elems, envelope: p.envelope, badEnvelope: p.badEnvelope && !p.envelope}
		s.line += int64(bytes.Count(data, nl))
		s.start = endPos
		return v, true
	}
	at := int(se.Offset - s.base)
	if i := bytes.IndexByte(s.buf[vstart:at], '\n'); i >= 0 {
		return s.failLine(vstart, line, vstart+i, at, se, false), true
	}
	return s.take(vstart, line, false, se, se.Error())
}

var nl = []byte{'\n'}

// overLimit settles a value that does not end within max bytes. Within its
// first line, that line is an oversized one: it is consumed to its end and
// returned truncated. Past the first line nothing tells one large value
// from a cut line followed by others, so only the first line is given up
// and reading resumes on the next.
func (s *Scanner) overLimit(vstart int, line int64) (Value, bool) {
	// See the byte after the limit: a first line of exactly max bytes
	// ends there.
	for s.end-vstart <= s.max {
		shift, ok := s.fillWait(vstart)
		vstart -= shift
		if !ok {
			break
		}
	}
	if s.readErr != nil {
		return Value{}, false
	}
	at := vstart + s.max
	err := &SyntaxError{
		Offset: s.base + int64(at),
		Line:   line + int64(bytes.Count(s.buf[vstart:at], nl)),
		Msg:    fmt.Sprintf("the value begun on line %d does not end within max_body_bytes (%d bytes)", line, s.max),
	}
	i := bytes.IndexByte(s.buf[vstart:min(at+1, s.end)], '\n')
	if i < 0 {
		return s.take(vstart, line, false, err, "")
	}
	return s.failLine(vstart, line, vstart+i, at, err, true), true
}

// maxRescans bounds how many failed values, each within the lines of the
// one before, are scanned again from their second line. Past it, the lines
// up to the one where the value failed are given up as one, so that broken
// values nested in one another are not scanned again once per level.
const maxRescans = 8

// failLine gives up the value at vstart, which failed at the buffer index
// at, past the line feed lf that ends its first line: the first line is
// returned with err, and reading resumes on the next line, which is still
// in the buffer.
func (s *Scanner) failLine(vstart int, line int64, lf, at int, err error, limit bool) Value {
	off := s.base + int64(vstart)
	for len(s.regions) > 0 && s.regions[len(s.regions)-1] <= off {
		s.regions = s.regions[:len(s.regions)-1]
	}
	end, resume := lf, lf+1
	if len(s.regions) < maxRescans {
		s.regions = append(s.regions, s.base+int64(at))
	} else {
		end = vstart + bytes.LastIndexByte(s.buf[vstart:at], '\n')
		resume = end + 1
	}
	data := bytes.TrimRight(s.buf[vstart:end], " \t\r")
	s.remember(resume, at, err, limit)
	s.start = resume
	s.line = line + int64(bytes.Count(s.buf[vstart:resume], nl))
	return Value{Data: data, Line: line, Err: err, Size: int64(len(data))}
}

// remember notes the brackets in buf[from:at] still open at at, where an
// enclosing value failed. Scanned again, each would fail the same way at
// the same place, as strings end on their own line and brackets match the
// same way whichever line the scan started on; so each is given up at once
// when reached, and a file of lines that never close is not scanned again
// for each of its lines. At the limit, brackets on the line where the limit
// fell are left out: their own limit lies further on.
func (s *Scanner) remember(from, at int, err error, limit bool) {
	if from >= at {
		return
	}
	to := at
	if limit {
		to = from + bytes.LastIndexByte(s.buf[from:at], '\n') + 1
	}
	var open []int // the outermost maxNesting of depth open brackets
	depth := 0
	for i := from; i < at; i++ {
		switch s.buf[i] {
		case '"':
			for i++; i < at && s.buf[i] != '"'; i++ {
				if s.buf[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			if depth < maxNesting {
				open = append(open, i)
			}
			depth++
		case '}', ']':
			if depth > 0 {
				depth--
				open = open[:min(depth, len(open))]
			}
		}
	}
	n := len(s.doomed)
	for _, i := range open {
		if i < to {
			s.doomed = append(s.doomed, doomed{s.base + int64(i), err})
		}
	}
	if len(s.doomed) > n {
		slices.SortStableFunc(s.doomed, func(a, b doomed) int { return cmp.Compare(a.off, b.off) })
		s.doomed = slices.CompactFunc(s.doomed, func(a, b doomed) bool { return a.off == b.off })
	}
}

// doomedAt returns the error of a value at the buffer index i known to
// fail, or nil.
func (s *Scanner) doomedAt(i int) error {
	off := s.base + int64(i)
	for len(s.doomed) > 0 && s.doomed[0].off < off {
		s.doomed = s.doomed[1:]
	}
	if len(s.doomed) == 0 || s.doomed[0].off != off {
		return nil
	}
	err := s.doomed[0].err
	s.doomed = s.doomed[1:]
	return err
}

// sniff tells from the first two bytes of a value input that is not JSON
// text: UTF-16, gzip, or a byte no JSON value starts with. It returns why.
func (s *Scanner) sniff() (string, bool) {
	for s.end-s.start < 2 {
		if _, ok := s.fillWait(s.start); !ok {
			break
		}
	}
	b := s.buf[s.start:s.end]
	if len(b) >= 2 {
		switch c0, c1 := b[0], b[1]; {
		case c0 == 0xFF && c1 == 0xFE:
			return utf16Reason("little-endian, byte-order mark FF FE"), true
		case c0 == 0xFE && c1 == 0xFF:
			return utf16Reason("big-endian, byte-order mark FE FF"), true
		case c0 == 0x1F && c1 == 0x8B:
			return "input is gzip-compressed (it starts with 1F 8B), not JSON text (decompress it first)", true
		case c1 == 0 && c0 != 0 && c0 < utf8.RuneSelf:
			return utf16Reason("little-endian, every other byte NUL"), true
		case c0 == 0 && c1 != 0 && c1 < utf8.RuneSelf:
			return utf16Reason("big-endian, every other byte NUL"), true
		}
	}
	switch c := b[0]; {
	case c == '{' || c == '[' || c == '"' || c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
		return "", false
	case c >= 0x20 && c < 0x7F:
		return fmt.Sprintf("unexpected character %q (not the start of a JSON value)", c), true
	default:
		return fmt.Sprintf("unexpected byte 0x%02X (not the start of a JSON value)", c), true
	}
}

func utf16Reason(how string) string {
	return "input is UTF-16 (" + how + "), not UTF-8 JSON text (convert it to UTF-8)"
}

// take consumes a failed unit of input from vstart: the rest of its line,
// or for a run of input that is not JSON text every line up to the next
// that starts JSON text. A unit of at most max bytes is returned whole with
// cause; a longer one is hashed as it is read and returned as its first
// bytes with a *TooLargeError whose Detail is detail. The line feed (or
// CR LF) that ends a unit is not part of it. It returns false when reading
// the input failed.
func (s *Scanner) take(vstart int, line int64, run bool, cause error, detail string) (Value, bool) {
	var o *overflow
	done, pos := vstart, vstart // with o: the unit is hashed up to done
	for {
		end, next, found := s.unitEnd(pos, run)
		if !found {
			// A CR at the end may come before the line feed that ends
			// the unit: it waits until that is known.
			end = next
			if end > done && s.buf[end-1] == '\r' {
				end--
			}
		} else if next > end && end > done && s.buf[end-1] == '\r' {
			end--
		}
		if o == nil && end-vstart > s.max {
			o = &overflow{h: sha256.New(), prefix: bytes.Clone(s.buf[vstart : vstart+min(truncatedKeep, s.max)])}
		}
		if o != nil {
			o.add(s.buf[done:end])
			done = end
		}
		if found {
			s.start = next
			if o != nil {
				s.line = line + o.lines + int64(bytes.Count(s.buf[end:next], nl))
				return o.value(line, detail), true
			}
			s.line = line + int64(bytes.Count(s.buf[vstart:next], nl))
			data := bytes.TrimRight(s.buf[vstart:end], " \t\r\n")
			return Value{Data: data, Line: line, Err: cause, Size: int64(len(data))}, true
		}
		keep := vstart
		if o != nil {
			keep = done
		}
		shift, ok := s.fillWait(keep)
		vstart, done, pos = vstart-shift, done-shift, next-shift
		if !ok && s.readErr != nil {
			return Value{}, false
		}
	}
}

// unitEnd finds, searching from pos, where a failed unit ends (see take):
// end is where its bytes end and next where reading resumes. found is
// false when the buffer cannot tell yet; next is then where to search from
// once there is more input, and the bytes before it are in the unit.
func (s *Scanner) unitEnd(pos int, run bool) (end, next int, found bool) {
	for {
		i := bytes.IndexByte(s.buf[pos:s.end], '\n')
		if i < 0 {
			return s.end, s.end, s.eof
		}
		lf := pos + i
		if !run {
			return lf, lf + 1, true
		}
		switch s.textLineAt(lf + 1) {
		case textYes:
			return lf, lf + 1, true
		case textUnknown:
			return lf, lf, false
		}
		pos = lf + 1
	}
}

// Answers of textLineAt.
const (
	textNo = iota
	textYes
	textUnknown // more input is needed to tell
)

// textProbe is how much of a line textLineAt looks at.
const textProbe = 64

// textLineAt tells whether the line at the buffer index i starts JSON text:
// after blanks and a byte-order mark, '{' or '[' beginning either a line
// that is a complete value or textProbe bytes of text (no control bytes
// but tabs, CRs and line feeds; valid UTF-8), or text up to the end of the
// input. A run of binary data hardly ever passes for that.
func (s *Scanner) textLineAt(i int) int {
	b := s.buf[i:s.end]
	j := 0
	for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\r') {
		j++
	}
	b = b[j:]
	if bytes.HasPrefix(b, bom) {
		b = b[len(bom):]
	} else if len(b) < len(bom) && bytes.HasPrefix(bom, b) && !s.eof {
		return textUnknown
	}
	switch {
	case len(b) == 0 && s.eof:
		return textNo
	case len(b) == 0:
		return textUnknown
	case b[0] != '{' && b[0] != '[':
		return textNo
	}
	if k := bytes.IndexByte(b, '\n'); k >= 0 && k < textProbe && wholeValue(bytes.TrimRight(b[:k], " \t\r")) {
		return textYes
	}
	if len(b) < textProbe && !s.eof {
		return textUnknown
	}
	if looksLikeText(b[:min(len(b), textProbe)]) {
		return textYes
	}
	return textNo
}

// looksLikeText reports whether b is UTF-8 text without control bytes but
// tabs, CRs and line feeds; a character cut off at the end of b does not
// count against it.
func looksLikeText(b []byte) bool {
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\r' && c != '\n' || c == 0x7F {
				return false
			}
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			return !utf8.FullRune(b)
		}
		b = b[n:]
	}
	return true
}

// overflow accumulates a failed unit too large to hold.
type overflow struct {
	h      hash.Hash
	prefix []byte
	size   int64
	lines  int64
}

func (o *overflow) add(b []byte) {
	o.h.Write(b)
	o.size += int64(len(b))
	o.lines += int64(bytes.Count(b, nl))
}

func (o *overflow) value(line int64, detail string) Value {
	v := Value{Data: o.prefix, Line: line, Size: o.size}
	o.h.Sum(v.SHA256[:0])
	v.Err = &TooLargeError{Size: o.size, SHA256: v.SHA256, Detail: detail}
	return v
}
