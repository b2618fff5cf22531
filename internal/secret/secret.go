// Package secret keeps credentials out of output: String, a type for
// them that never prints its value (not through fmt, slog, JSON or TOML
// encoding), and Redactor, which removes them from text that carries them
// anyway, such as a client library's error, in every form they travel in.
package secret

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redacted is what a non-empty Secret prints as.
const Redacted = "[redacted]"

// String is a credential (password, key, token, connection string). Use
// Reveal only at the point where the value is handed to a client library.
type String struct{ v string }

// New wraps v.
func New(v string) String { return String{v: v} }

// Reveal returns the credential itself.
func (s String) Reveal() string { return s.v }

// IsZero reports whether no credential is set.
func (s String) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer without revealing the value.
func (s String) String() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from revealing the value.
func (s String) GoString() string { return s.String() }

// LogValue keeps slog from revealing the value.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText writes the redacted form, so an encoded config never leaks.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the credential from config text.
func (s *String) UnmarshalText(b []byte) error {
	s.v = string(b)
	return nil
}

// Forms returns the strings that reveal credential v when they appear in
// text: v itself, as written inside a JSON string and in a URL query, and
// its base64 encodings (standard and URL alphabets, with and without
// padding). When v is itself base64 of text, as Elasticsearch API keys
// ("id:key") and service tokens are, the decoded text and the part after
// its first colon are forms too. Longest first; nil for "".
func Forms(v string) []string {
	if v == "" {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	addWritten := func(s string) {
		add(s)
		for _, q := range jsonForms(s) {
			add(q)
		}
		add(url.QueryEscape(s))
		for _, enc := range encodings {
			add(enc.EncodeToString([]byte(s)))
		}
	}
	addWritten(v)
	// Decoded parts are guesses; short ones would blank out ordinary words.
	if plain, ok := decodeText(v); ok && len(plain) >= minDerived {
		addWritten(plain)
		if _, after, found := strings.Cut(plain, ":"); found && len(after) >= minDerived {
			addWritten(after)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// minDerived is the shortest decoded part of a credential taken as a form.
const minDerived = 8

// jsonForms returns s as written inside a JSON string, with and without
// the HTML-safe escapes of encoding/json.
func jsonForms(s string) []string {
	var out []string
	q, _ := json.Marshal(s)
	out = append(out, string(q[1:len(q)-1]))
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	q2 := strings.TrimSuffix(b.String(), "\n")
	return append(out, q2[1:len(q2)-1])
}

var encodings = []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}

// decodeText decodes s as base64 in any of its forms when the result is
// printable text.
func decodeText(s string) (string, bool) {
	for _, enc := range encodings {
		b, err := enc.DecodeString(s)
		if err != nil || len(b) == 0 || !utf8.Valid(b) {
			continue
		}
		printable := true
		for _, r := range string(b) {
			if !unicode.IsPrint(r) {
				printable = false
				break
			}
		}
		if printable {
			return string(b), true
		}
	}
	return "", false
}

// Redactor replaces every form (see Forms) of a set of credentials with
// Redacted. The zero value and nil redact nothing; it is safe for
// concurrent use.
type Redactor struct{ r *strings.Replacer }

// NewRedactor returns a Redactor for the given credential values; empty
// values are ignored. Pass each value as it is configured and as it is
// sent (e.g. the password and "user:password" for basic authentication).
func NewRedactor(values ...string) *Redactor {
	var forms []string
	for _, v := range values {
		forms = append(forms, Forms(v)...)
	}
	if len(forms) == 0 {
		return &Redactor{}
	}
	// At one position the Replacer takes the first pattern that matches:
	// the longest form must win over any form it contains.
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Redacted)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// Redact returns s with every form of the credentials replaced.
func (r *Redactor) Redact(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}
