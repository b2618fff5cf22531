package secret

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinLen is the shortest secret value, and the shortest form of one, that
// is searched for: shorter ones would blank out ordinary words.
const MinLen = 4

// forms returns the texts v travels in: itself, URL- and JSON-escaped, and
// base64 in the standard and the URL-safe alphabet, padded and not, alone
// and inside a longer encoded run, each also percent-encoded.
func forms(v string) []string {
	out := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	// Inside a JSON string, with and without encoding/json's HTML escapes.
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	var plain strings.Builder
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		q := strings.TrimSuffix(plain.String(), "\n")
		out = append(out, q[1:len(q)-1])
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		encoded := append([]string{
			enc.EncodeToString([]byte(v)),
			enc.WithPadding(base64.NoPadding).EncodeToString([]byte(v)),
		}, embedded(enc, v)...)
		for _, f := range encoded {
			// '+', '/' and '=' are escaped in query strings and form
			// bodies.
			out = append(out, f, url.QueryEscape(f))
		}
	}
	for _, f := range out {
		if strings.Contains(f, "%") {
			out = append(out, lowerEscapes(f))
		}
	}
	return out
}

// embedded returns, for each of the three offsets modulo 3 at which v can
// start inside longer data, the base64 characters that depend on v's bytes
// alone. The encoding of any data that holds v at such an offset contains
// them; only the first and last character of v's stretch, which mix v's
// edge bits with its neighbours', are not covered.
func embedded(enc *base64.Encoding, v string) []string {
	raw := enc.WithPadding(base64.NoPadding)
	out := make([]string, 0, 3)
	for lead := range 3 {
		buf := make([]byte, lead+len(v)+2)
		copy(buf[lead:], v)
		e := raw.EncodeToString(buf)
		// Character i holds bits 6i to 6i+5; v holds bits 8·lead to
		// 8·(lead+len(v))-1.
		start, end := (8*lead+5)/6, 8*(lead+len(v))/6
		if end > start {
			out = append(out, e[start:end])
		}
	}
	return out
}

// lowerEscapes writes the hex digits of percent escapes in lower case, as
// some encoders do.
func lowerEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerHex(b[i+1]), lowerHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHex(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// parts returns the secrets inside v that a client may print or send
// without the rest of v: the secret values of a connection string or SAS
// query string (SharedAccessKey=..., sig=...), and the user and password
// of a URL's user info or of a base64 "id:key" API key, as pairs.
func parts(v string) (values []string, pairs [][2]string) {
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '&' || r == '?' }) {
		k, val, ok := strings.Cut(part, "=")
		// A SAS in a connection string is itself "SharedAccessSignature
		// sr=...&sig=...": the split at '&' reaches its sig.
		if ok && val != "" && IsKey(strings.TrimSpace(k)) {
			values = append(values, val)
		}
	}
	if strings.Contains(v, "://") {
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				pairs = append(pairs, [2]string{u.User.Username(), p})
			}
		}
	}
	if id, key, ok := decodedPair(v); ok {
		pairs = append(pairs, [2]string{id, key})
	}
	return values, pairs
}

// decodedPair recognises a credential that is itself the base64 of
// "id:key", as an Elasticsearch API key is configured.
func decodedPair(v string) (id, key string, ok bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(v)
		if err != nil || !printable(b) {
			continue
		}
		id, key, ok = strings.Cut(string(b), ":")
		if ok && id != "" && key != "" {
			return id, key, true
		}
	}
	return "", "", false
}

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
