package entra

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
)

// What the grammar expects next.
const (
	expValue        = iota // a value
	expValueOrClose        // after '[': a value or ']'
	expKeyOrClose          // after '{': a key or '}'
	expKey                 // after ',' in an object
	expColon               // after a key
	expCommaOrClose        // after a value in a container
)

// parser validates one top-level value held in the scanner's buffer,
// refilling as needed, and notes the spans of its records.
type parser struct {
	s        *Scanner
	vstart   int // buffer index of the value start
	stack    []byte
	exp      int
	elems    []span
	envelope bool
	// badEnvelope is set when a top-level object's "records" or "value"
	// member is not an array: an envelope that holds no records.
	badEnvelope bool

	// envelope detection
	lastKeyEnv  bool // the last depth-1 key was "records" or "value"
	trackDepth  int  // depth whose elements are records; 0 = none yet
	trackActive bool
	elemStart   int  // offset from vstart
	elemKind    byte // elemOpen when the element may be an envelope: Records opens it
	escEnd      int  // end of the last string with escapes directly in it
	badStart    int  // offset of a records/value member that is no array
	badOpen     bool // that member is being scanned
	skipStack   []byte

	shifted int // how far refills moved the buffer since last taken
}

// takeShift returns and clears the distance refills moved the buffer, for a
// caller holding a buffer index across a refill.
func (p *parser) takeShift() int {
	n := p.shifted
	p.shifted = 0
	return n
}

var (
	keyRecords = []byte("records")
	keyValue   = []byte("value")
)

// Classes of bytes outside strings in skip.
const (
	clsPlain = iota // nothing to do
	clsQuote
	clsOpen
	clsClose
	clsLF
)

var skipClass = func() (t [256]byte) {
	t['"'] = clsQuote
	t['{'], t['['] = clsOpen, clsOpen
	t['}'], t[']'] = clsClose, clsClose
	t['\n'] = clsLF
	return t
}()

// strStop marks bytes that end a run of plain string content.
var strStop = func() (t [256]bool) {
	for i := 0; i < 0x20; i++ {
		t[i] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

func (p *parser) syntax(pos int, format string, args ...any) error {
	s := p.s
	line := s.line + int64(bytes.Count(s.buf[p.vstart:min(pos, s.end)], nl))
	return &SyntaxError{Offset: s.base + int64(pos), Line: line, Msg: fmt.Sprintf(format, args...)}
}

// more makes more input available after pos. It returns the new pos, or
// ok=false at the end of input, or ErrTooLarge when the value outgrew the
// limit, or the error of a value found cut short when the input paused.
func (p *parser) more(pos int) (int, bool, error) {
	s := p.s
	for {
		if s.end-p.vstart >= s.max {
			return pos, false, ErrTooLarge
		}
		shift, ok := s.fill(p.vstart)
		p.vstart -= shift
		p.shifted += shift
		pos -= shift
		if ok || !s.idle {
			return pos, ok, nil
		}
		if err := p.cutAtIdle(); err != nil {
			return pos, false, err
		}
	}
}

// cutAtIdle decides, when the input has nothing more for now, whether the
// open value was cut short (see Scanner.Next). It returns the error to
// fail the value with, or nil to wait for more input.
func (p *parser) cutAtIdle() error {
	s := p.s
	data := s.buf[p.vstart:s.end]
	body := bytes.TrimRight(data, " \t\r\n")
	if bytes.IndexByte(data[len(body):], '\n') < 0 {
		return nil // the last line is still being written
	}
	k := bytes.LastIndexByte(body, '\n')
	if k < 0 {
		return nil // one line so far: it may go on
	}
	last := bytes.TrimRight(body[k+1:], " \t\r")
	if last[0] != '{' && last[0] != '[' || !wholeValue(last) {
		return nil
	}
	return p.syntax(p.vstart+k+1, "this line, the last so far, is a complete value of its own while the value begun on line %d is still open: that line was cut short", s.line)
}

// wholeValue reports whether b is exactly one valid JSON value.
func wholeValue(b []byte) bool {
	v, err := NewBytesScanner(b, len(b)+1).Next()
	return err == nil && v.Err == nil && len(v.Data) == len(b)
}

// run scans from vstart and returns the buffer index just past the value.
func (p *parser) run(vstart int) (int, error) {
	s := p.s
	p.vstart = vstart
	p.elems = s.elems[:0]
	p.stack = p.stack[:0]
	p.exp = expValue
	p.shifted = 0
	pos := vstart
	defer func() { s.elems = p.elems[:0] }()
	for {
		if pos >= s.end {
			var ok bool
			var err error
			pos, ok, err = p.more(pos)
			p.takeShift()
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, p.syntax(pos, "unexpected end of input")
			}
			continue
		}
		c := s.buf[pos]
		switch c {
		case ' ', '\t', '\r', '\n':
			pos++
			continue
		}
		switch p.exp {
		case expValue, expValueOrClose:
			if c == ']' && p.exp == expValueOrClose {
				if pos++; p.closed(pos) {
					return pos, nil
				}
				continue
			}
			p.beginValue(pos)
			member := len(p.stack) == 1 && p.lastKeyEnv && p.stack[0] == '{'
			if member && c != '[' {
				// No records here: an envelope with arrays besides hands
				// this member out as a failed element.
				p.badEnvelope = true
				p.badStart, p.badOpen = pos-p.vstart, true
			}
			switch c {
			case '{', '[':
				envArray := c == '[' && member
				if len(p.stack) > 0 && !envArray {
					// Below the envelope only structure is followed: the
					// records that may be SSPR events are fully parsed
					// later, the rest are dropped unread. An element's
					// keys are looked at for nested envelopes.
					keys := c == '{' && p.trackActive && len(p.stack) == p.trackDepth
					var done bool
					var err error
					if pos, done, err = p.advance(pos)(p.skip(pos, keys)); err != nil || done {
						return pos, err
					}
					continue
				}
				if envArray {
					p.trackDepth = 2
					p.trackActive = true
					p.envelope = true
				} else if c == '[' {
					p.trackDepth = 1
					p.trackActive = true
				}
				p.stack = append(p.stack, c)
				if c == '{' {
					p.exp = expKeyOrClose
				} else {
					p.exp = expValueOrClose
				}
				pos++
			default:
				scan := p.scalar
				if c == '"' {
					scan = p.str
				}
				var done bool
				var err error
				if pos, done, err = p.advance(pos)(scan(pos)); err != nil || done {
					return pos, err
				}
			}
		case expKeyOrClose, expKey:
			if c == '}' && p.exp == expKeyOrClose {
				if pos++; p.closed(pos) {
					return pos, nil
				}
				continue
			}
			if c != '"' {
				return 0, p.syntax(pos, "expected a string key, found %q", c)
			}
			end, err := p.str(pos)
			if err != nil {
				return 0, err
			}
			if end < 0 {
				pos -= p.takeShift()
				continue
			}
			if len(p.stack) == 1 {
				p.lastKeyEnv = isEnvelopeKey(s.buf[pos+1 : end-1])
			}
			pos = end
			p.exp = expColon
		case expColon:
			if c != ':' {
				return 0, p.syntax(pos, "expected ':' after key, found %q", c)
			}
			pos++
			p.exp = expValue
		case expCommaOrClose:
			top := p.stack[len(p.stack)-1]
			switch {
			case c == ',':
				pos++
				if top == '{' {
					p.exp = expKey
				} else {
					p.exp = expValue
				}
			case (c == '}' && top == '{') || (c == ']' && top == '['):
				if pos++; p.closed(pos) {
					return pos, nil
				}
			default:
				return 0, p.syntax(pos, "expected ',' or '%c', found %q", closer(top), c)
			}
		}
	}
}

func closer(open byte) byte {
	if open == '{' {
		return '}'
	}
	return ']'
}

// advance returns what to do with the result of scanning a whole value
// (string, scalar, nested container) that began at pos: the position to go
// on from, whether the top-level value is complete, or the error. An end of
// -1 means the buffer was refilled and the value must be scanned again.
func (p *parser) advance(pos int) func(end int, err error) (int, bool, error) {
	return func(end int, err error) (int, bool, error) {
		switch {
		case err != nil:
			return 0, false, err
		case end < 0:
			return pos - p.takeShift(), false, nil
		}
		return end, p.endValue(end), nil
	}
}

// beginValue notes where a record starts.
func (p *parser) beginValue(pos int) {
	if p.trackActive && len(p.stack) == p.trackDepth {
		p.elemStart = pos - p.vstart
		p.elemKind = elemPlain
	}
}

// endValue records the end of a value at pos and reports whether the
// top-level value is complete.
func (p *parser) endValue(pos int) bool {
	if p.trackActive && len(p.stack) == p.trackDepth {
		p.elems = append(p.elems, span{p.elemStart, pos - p.vstart, p.elemKind})
	}
	if p.badOpen {
		p.endBadMember(pos)
	}
	if len(p.stack) == 0 {
		return true
	}
	p.exp = expCommaOrClose
	return false
}

// endBadMember notes the end of a records/value member that is not an
// array, when the value ending at pos is that member.
func (p *parser) endBadMember(pos int) {
	if len(p.stack) == 1 {
		p.elems = append(p.elems, span{p.badStart, pos - p.vstart, elemBadMember})
		p.badOpen = false
	}
}

// closed pops the container whose closing bracket ends just before pos and
// reports whether that completed the top-level value.
func (p *parser) closed(pos int) bool {
	p.stack = p.stack[:len(p.stack)-1]
	if p.trackActive && len(p.stack) < p.trackDepth {
		p.trackActive = false // the records array itself closed
	}
	return p.endValue(pos)
}

// skip follows a nested object or array starting at pos to its end,
// checking strings, bracket nesting and line breaks but not the grammar
// between them. With keys (the container is an element), the key of each
// member of it holding an object or array is looked at: an envelope key
// has Records open the element. It returns the index past the container,
// or -1 when the buffer was refilled and the container must be scanned
// again. Every byte of every record goes through this loop, so it works on
// a local slice and scans string content eight bytes at a time inline.
func (p *parser) skip(pos int, keys bool) (int, error) {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
	)
	s := p.s
	buf := s.buf[:s.end]
	st := p.skipStack[:0]
	defer func() { p.skipStack = st[:0] }()
	top := false // directly inside an element that keys are looked at in
	p.escEnd = -1
	i := pos
	for i < len(buf) {
		c := buf[i]
		cls := skipClass[c]
		if cls == clsPlain {
			i++
			continue
		}
		switch cls {
		case clsQuote:
			// Most strings have no escapes: find the closing quote here
			// and leave escapes, control characters and refills to str.
			j := i + 1
			for ; j+8 <= len(buf); j += 8 {
				x := binary.LittleEndian.Uint64(buf[j:])
				q := x ^ (lo * '"')
				e := x ^ (lo * '\\')
				if m := (((q - lo) &^ q) | ((e - lo) &^ e) | ((x - lo*0x20) &^ x)) & hi; m != 0 {
					j += bits.TrailingZeros64(m) / 8
					break
				}
			}
			if j+8 > len(buf) {
				for j < len(buf) && !strStop[buf[j]] {
					j++
				}
			}
			if j < len(buf) && buf[j] == '"' {
				i = j + 1
				continue
			}
			end, err := p.str(i)
			if err != nil || end < 0 {
				return end, err
			}
			if top {
				p.escEnd = end
			}
			i = end
		case clsOpen:
			if top && p.elemKind == elemPlain {
				// A member of the element that may hold records: is its
				// key "records" or "value"? No call here: one would cost
				// the whole loop registers.
				q := i - 1
				for isBlank(buf[q]) {
					q--
				}
				if buf[q] == ':' {
					for q--; isBlank(buf[q]); q-- {
					}
					// Without escapes "records" and "value" have 5, 7 or 8
					// bytes ("recordſ") and start with r or v: a loose test,
					// opening the element settles it.
					open := q+1 == p.escEnd
					for _, n := range [...]int{len(keyValue), len(keyRecords), len(keyRecords) + 1} {
						o := q - n - 1
						open = open || o > pos && buf[o] == '"' && (buf[o+1]|0x20 == 'r' || buf[o+1]|0x20 == 'v')
					}
					if open {
						p.elemKind = elemOpen
					}
				}
			}
			st = append(st, c)
			top = keys && len(st) == 1
			i++
		case clsClose:
			if len(st) == 0 || closer(st[len(st)-1]) != c {
				return 0, p.syntax(i, "unexpected %q", c)
			}
			st = st[:len(st)-1]
			i++
			if len(st) == 0 {
				return i, nil
			}
			top = keys && len(st) == 1
		default: // a line feed
			next, err := p.lineBreak(pos, i)
			if err != nil || next < 0 {
				return next, err
			}
			i = next
		}
	}
	return p.needMore(pos, i, "unexpected end of input")
}

// isEnvelopeKey reports whether a raw object key (between its quotes)
// names an envelope array, "records" or "value", matched as encoding/json
// matches field names: after unescaping, case-insensitively.
func isEnvelopeKey(k []byte) bool {
	if bytes.IndexByte(k, '\\') >= 0 {
		var u string
		if json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &u) != nil {
			return false
		}
		k = []byte(u)
	}
	// "ſ" folds to "s": "recordſ" has 8 bytes.
	if n := len(k); n != len(keyValue) && n != len(keyRecords) && n != len(keyRecords)+1 {
		return false
	}
	return bytes.EqualFold(k, keyRecords) || bytes.EqualFold(k, keyValue)
}

// lineBreak checks the line feed at i inside the container that starts at
// pos: no value may end before it and another begin after it without a
// ',' between them, as where a line cut short meets the next line. It
// returns where to go on from (past the blank lines), or -1 when the
// buffer was refilled and the container must be scanned again.
func (p *parser) lineBreak(pos, i int) (int, error) {
	s := p.s
	k := i - 1
	for isBlank(s.buf[k]) {
		k--
	}
	j := i + 1
	for j < s.end && isBlank(s.buf[j]) {
		j++
	}
	if j >= s.end {
		return p.needMore(pos, j, "unexpected end of input")
	}
	if endsValue(s.buf[k]) && startsValue(s.buf[j]) {
		return 0, p.syntax(j, "no ',' between two values at a line break: the line before looks cut short")
	}
	return j, nil
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

func endsValue(c byte) bool {
	return c == '}' || c == ']' || c == '"' || isAlnum(c)
}

func startsValue(c byte) bool {
	return c == '{' || c == '[' || c == '"' || c == '-' || isAlnum(c)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
}

// needMore asks for more of the value that starts at the buffer index
// pos: it returns -1 once the buffer was refilled (the caller scans again),
// or, at the end of input, a syntax error msg at the buffer index at as it
// was before the refill.
func (p *parser) needMore(pos, at int, msg string) (int, error) {
	_, ok, err := p.more(pos)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, p.syntax(at-p.takeShift(), "%s", msg)
	}
	return -1, nil
}

// str scans the string starting at the quote at pos and returns the index
// past its closing quote, or -1 when the buffer was refilled and the string
// must be scanned again.
func (p *parser) str(pos int) (int, error) {
	s := p.s
	i := pos + 1
	for {
		i += stringStop(s.buf[i:s.end])
		if i >= s.end {
			return p.needMore(pos, i, "unterminated string")
		}
		switch c := s.buf[i]; c {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 >= s.end {
				return p.needMore(pos, i, "unterminated string")
			}
			switch s.buf[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > s.end {
					return p.needMore(pos, i, "unterminated string")
				}
				for _, h := range s.buf[i+2 : i+6] {
					if !isHex(h) {
						return 0, p.syntax(i, "invalid \\u escape")
					}
				}
				i += 6
			default:
				return 0, p.syntax(i, "invalid escape \\%c", s.buf[i+1])
			}
		default:
			return 0, p.syntax(i, "control character 0x%02x in string", c)
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

var (
	litTrue  = []byte("true")
	litFalse = []byte("false")
	litNull  = []byte("null")
)

// scalar scans a number or literal at pos and returns the index past it, or
// -1 when the buffer was refilled.
func (p *parser) scalar(pos int) (int, error) {
	s := p.s
	c := s.buf[pos]
	var lit []byte
	switch c {
	case 't':
		lit = litTrue
	case 'f':
		lit = litFalse
	case 'n':
		lit = litNull
	}
	if lit != nil {
		if pos+len(lit) > s.end {
			return p.needMore(pos, pos, "truncated literal")
		}
		if !bytes.Equal(s.buf[pos:pos+len(lit)], lit) {
			return 0, p.syntax(pos, "invalid literal")
		}
		end := pos + len(lit)
		if end >= s.end {
			// See the next byte before deciding: "null0" is not "null".
			_, ok, err := p.more(pos)
			if err != nil {
				return 0, err
			}
			if ok {
				return -1, nil
			}
			end -= p.takeShift()
		}
		return end, p.delimited(end)
	}
	if c != '-' && (c < '0' || c > '9') {
		return 0, p.syntax(pos, "unexpected character %q", c)
	}
	i := pos
	for i < s.end && isNumByte(s.buf[i]) {
		i++
	}
	if i >= s.end {
		_, ok, err := p.more(pos)
		if err != nil {
			return 0, err
		}
		if ok {
			return -1, nil
		}
		sh := p.takeShift()
		pos -= sh
		i -= sh
	}
	if !validNumber(s.buf[pos:i]) {
		return 0, p.syntax(pos, "invalid number %q", s.buf[pos:i])
	}
	return i, p.delimited(i)
}

// delimited checks that a scalar is not glued to what follows (as in "truex").
func (p *parser) delimited(end int) error {
	s := p.s
	if end >= s.end {
		return nil
	}
	switch c := s.buf[end]; c {
	case ' ', '\t', '\r', '\n', ',', ']', '}', ':':
		return nil
	default:
		return p.syntax(end, "unexpected character %q after value", c)
	}
}

func isNumByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// validNumber checks the JSON number grammar.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(b)
}

// stringStop returns the index of the first byte of b that ends plain
// string content ('"', '\\' or a control character), or len(b). It tests
// eight bytes at a time: string content is most of every record.
func stringStop(b []byte) int {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (lo * '"')
		e := x ^ (lo * '\\')
		// Each term flags bytes that are zero (or below 0x20 for the last);
		// the lowest flagged byte is always a true match.
		m := ((q - lo) &^ q) | ((e - lo) &^ e) | ((x - lo*0x20) &^ x)
		if m &= hi; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if strStop[b[i]] {
			return i
		}
	}
	return len(b)
}
