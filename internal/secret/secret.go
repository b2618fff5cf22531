// Package secret keeps credentials out of output: String, a type for
// them that never prints its value (not through fmt, slog, JSON or TOML
// encoding), and Redactor, which removes them from text that carries them
// anyway, such as a client library's error, in every form they travel in.
package secret

import "log/slog"

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
