// Package secrettest finds secrets in output for tests, however they are
// encoded, without sharing the redactor's code: a check built on the same
// arithmetic as the redactor would miss what the redactor misses.
package secrettest

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
)

// Encodings returns the forms a credential is sent or echoed in, by name:
// as it is, query-escaped, base64 in both alphabets with and without
// padding, percent-encoded base64, after "Authorization: Basic", inside a
// longer encoded JSON body at each of the three byte alignments, and as a
// SASL PLAIN message (NUL-separated, ':' taken as the separator).
func Encodings(s string) map[string]string {
	b := []byte(s)
	out := map[string]string{
		"raw":                s,
		"query-escaped":      url.QueryEscape(s),
		"std base64":         base64.StdEncoding.EncodeToString(b),
		"std base64 no pad":  base64.RawStdEncoding.EncodeToString(b),
		"url base64":         base64.URLEncoding.EncodeToString(b),
		"url base64 no pad":  base64.RawURLEncoding.EncodeToString(b),
		"query-escaped b64":  url.QueryEscape(base64.StdEncoding.EncodeToString(b)),
		"basic header value": "Authorization: Basic " + base64.StdEncoding.EncodeToString(b),
		"SASL PLAIN message": base64.StdEncoding.EncodeToString([]byte("\x00" + strings.Replace(s, ":", "\x00", 1))),
	}
	for _, lead := range []string{"", "{", "{ "} {
		body := []byte(lead + `"auth":"` + s + `","n":1}`)
		at := strconv.Itoa(len(lead) + len(`"auth":"`))
		out["std base64 inside a run at byte "+at] = base64.StdEncoding.EncodeToString(body)
		out["url base64 inside a run at byte "+at] = base64.URLEncoding.EncodeToString(body)
	}
	return out
}

// Recoverable reports whether the middle of secret (all but its first and
// last byte, whose bits an encoding mixes with its neighbours') can be
// read from out: as text, percent-decoded, or base64-decoded from any run
// of base64 characters of either alphabet at any of the four character
// phases. secret must be at least 3 bytes long.
func Recoverable(out, secret string) bool {
	core := secret[1 : len(secret)-1]
	texts := []string{out}
	if u, err := url.QueryUnescape(out); err == nil {
		texts = append(texts, u)
	}
	for _, t := range texts {
		if strings.Contains(t, core) {
			return true
		}
		for _, run := range base64Runs(t) {
			for phase := range 4 {
				p := run[min(phase, len(run)):]
				if len(p)%4 == 1 {
					// A lone last character holds no whole byte.
					p = p[:len(p)-1]
				}
				if dec, err := base64.RawStdEncoding.DecodeString(p); err == nil && strings.Contains(string(dec), core) {
					return true
				}
			}
		}
	}
	return false
}

// base64Runs returns the maximal runs of base64 characters of s, in the
// standard alphabet and without padding.
func base64Runs(s string) []string {
	var runs []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() >= 4 {
			runs = append(runs, cur.String())
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			cur.WriteByte(c)
		case c == '-':
			cur.WriteByte('+')
		case c == '_':
			cur.WriteByte('/')
		default:
			flush()
		}
	}
	flush()
	return runs
}
