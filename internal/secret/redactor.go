package secret

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Redactor removes the secret values registered with it, in every form
// they travel in (see Add), and then the shapes Redact knows. The zero
// value is ready to use; it is safe for concurrent use.
type Redactor struct {
	mu    sync.Mutex          // serialises Add
	forms map[string]struct{} // every form registered so far
	m     atomic.Pointer[matcher]
}

// NewRedactor returns a redactor knowing the given secret values.
func NewRedactor(values ...string) *Redactor {
	r := &Redactor{}
	r.Add(values...)
	return r
}

// Add registers secret values. Each is searched for as it is, URL- and
// JSON-escaped, and base64-encoded (standard and URL-safe alphabet,
// padded or not, alone or inside a longer encoded run, also
// percent-encoded). Add also registers what a client may send or print
// without the rest of a value: the secret parts of a connection string or
// SAS query (SharedAccessKey=..., sig=...) and, as AddBasic does, the
// password of a URL's user info with its user and the key of a base64
// "id:key" API key with its id. Values shorter than MinLen are ignored.
func (r *Redactor) Add(values ...string) {
	r.update(func(add func(string)) {
		for _, v := range values {
			add(v)
			vs, pairs := parts(v)
			for _, p := range vs {
				add(p)
			}
			for _, p := range pairs {
				addBasic(add, p[0], p[1])
			}
		}
	})
}

// AddBasic registers a password and the "user:password" pair that HTTP
// Basic authentication sends base64-encoded, in every form Add searches
// for. (SASL PLAIN's NUL-separated message is found through the
// password's forms inside a longer encoded run.)
func (r *Redactor) AddBasic(user, password string) {
	r.update(func(add func(string)) { addBasic(add, user, password) })
}

func addBasic(add func(string), user, password string) {
	add(password)
	if user != "" && password != "" {
		add(user + ":" + password)
	}
}

// AddStrings registers the values of configuration secrets, such as those
// In returns.
func (r *Redactor) AddStrings(values ...String) {
	vs := make([]string, 0, len(values))
	for _, v := range values {
		vs = append(vs, v.Reveal())
	}
	r.Add(vs...)
}

// update registers the forms of the values fn adds and publishes a new
// matcher; readers keep using the old one until then.
func (r *Redactor) update(fn func(add func(string))) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.forms == nil {
		r.forms = map[string]struct{}{}
	}
	fn(func(v string) {
		if len(v) < MinLen {
			return
		}
		for _, f := range forms(v) {
			if len(f) >= MinLen {
				r.forms[f] = struct{}{}
			}
		}
	})
	r.m.Store(newMatcher(r.forms))
}

// Redact replaces every registered value with Redacted, then the shapes
// Redact knows. A nil Redactor removes only the shapes.
func (r *Redactor) Redact(s string) string {
	if r != nil {
		s = r.m.Load().replace(s)
	}
	return Redact(s)
}

// RedactError returns err with its message redacted; errors.Is and
// errors.As still see the errors it wraps. A clean err is returned as it
// is.
func (r *Redactor) RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := r.Redact(msg)
	if clean == msg {
		return err
	}
	return redactedError{msg: clean, err: err}
}

// RedactError is RedactError of a Redactor that knows no values: it
// removes the shapes Redact knows (keys, signatures, tokens, passwords
// named as such), for errors built where no configuration is at hand.
func RedactError(err error) error { return (*Redactor)(nil).RedactError(err) }

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// filterBits is the size of the matcher's filter: 2^16 bits (8 KiB)
// keep false hits rare with thousands of forms.
const filterBits = 16

// matcher finds many fixed strings in one pass: a bit per hash of the
// first MinLen bytes of each, so that most positions of a text cost a
// table look-up, and the strings themselves only where a bit is set.
type matcher struct {
	filter   [1 << filterBits / 64]uint64
	byPrefix map[uint32][]string // longest first
}

func newMatcher(set map[string]struct{}) *matcher {
	m := &matcher{byPrefix: make(map[uint32][]string, len(set))}
	for f := range set {
		p := prefix(f, 0)
		m.byPrefix[p] = append(m.byPrefix[p], f)
		h := hash(p)
		m.filter[h/64] |= 1 << (h % 64)
	}
	for _, fs := range m.byPrefix {
		slices.SortFunc(fs, func(a, b string) int { return len(b) - len(a) })
	}
	return m
}

// prefix packs the MinLen bytes of s from i.
func prefix(s string, i int) uint32 {
	_ = s[i+3]
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

func hash(p uint32) uint32 { return (p * 0x9e3779b1) >> (32 - filterBits) }

// longest returns the length of the longest string of m at s[i:], or 0.
func (m *matcher) longest(s string, i int, p uint32) int {
	for _, f := range m.byPrefix[p] {
		if strings.HasPrefix(s[i:], f) {
			return len(f)
		}
	}
	return 0
}

// replace returns s with every stretch covered by the strings of m
// (overlapping or adjacent ones merged) replaced by one Redacted.
func (m *matcher) replace(s string) string {
	if m == nil || len(m.byPrefix) == 0 {
		return s
	}
	var b strings.Builder
	done, start, end := 0, 0, -1 // s[:done] is written; s[start:end] is masked next
	for i := 0; i+MinLen <= len(s); i++ {
		p := prefix(s, i)
		if h := hash(p); m.filter[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		n := m.longest(s, i, p)
		switch {
		case n == 0:
		case i <= end:
			end = max(end, i+n)
		default:
			if end >= 0 {
				b.WriteString(s[done:start])
				b.WriteString(Redacted)
				done = end
			}
			start, end = i, i+n
		}
	}
	if end < 0 {
		return s
	}
	b.WriteString(s[done:start])
	b.WriteString(Redacted)
	b.WriteString(s[end:])
	return b.String()
}
