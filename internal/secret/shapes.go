package secret

import (
	"encoding/base64"
	"regexp"
	"strings"
)

// Patterns of secrets inside text. Each keeps what names the secret and
// replaces only the value, so that a redacted message still says what was
// wrong.
var (
	// name=value and name: value pairs: connection strings
	// (SharedAccessKey=..., AccountKey=..., Password=...), query strings
	// (sig=...), JSON ("password":"...") and Go-printed structs.
	kvPattern = regexp.MustCompile(`(?i)(\b(?:shared[-_]?access[-_]?key|shared[-_]?access[-_]?signature|account[-_]?key|access[-_]?key|primary[-_]?key|secondary[-_]?key|api[-_]?key|client[-_]?secret|secret|password|passwd|pwd|(?:access[-_]?|refresh[-_]?|id[-_]?|sas[-_]?)?token|sig|signature)["']?\s*[:=]\s*)("[^"]*"|'[^']*'|\[[^\]\s]*\]|[^\s"'&;,<>}\]]+)`)
	// Authorization headers, whatever the scheme.
	authHeaderPattern = regexp.MustCompile(`(?i)(\b(?:proxy-)?authorization["']?\s*[:=]\s*\[?["']?)(?:(bearer|basic|apikey|sharedaccesssignature|negotiate|digest|token)\s+)?([^\s"',;\]]+)`)
	// Scheme and credential outside a header: "Bearer eyJ...", "ApiKey
	// VnVX...", "Basic dXNlcjpwYXNz".
	schemePattern = regexp.MustCompile(`(?i)\b(bearer|basic|apikey)\s+([A-Za-z0-9\-._~+/]{8,}=*)`)
	// user:password@ in URLs.
	userinfoPattern = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]*:)([^\s/]*)@`)
	// JSON Web Tokens, wherever they appear.
	jwtPattern = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`)
)

// triggers are lower-case fragments of which a string must contain one
// for any pattern to match; most log text contains none and skips the
// regular expressions.
var triggers = []string{"key", "sig", "secret", "pass", "pwd", "token", "auth", "bearer", "basic", "://", "eyj"}

// Redact removes the secret shapes it knows from s: name=value pairs with a
// secret-looking name, Authorization headers and credentials after an
// authentication scheme, user:password@ in URLs and JSON Web Tokens. It
// needs no registered value; a Redactor also removes those.
func Redact(s string) string {
	if !hasTrigger(s) {
		return s
	}
	s = userinfoPattern.ReplaceAllString(s, "${1}"+Redacted+"@")
	s = authHeaderPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := authHeaderPattern.FindStringSubmatch(m)
		if strings.HasPrefix(Redacted, sub[3]) {
			// Already redacted by value; the pattern stops at its ']'.
			return m
		}
		if sub[2] != "" {
			return sub[1] + sub[2] + " " + Redacted
		}
		return sub[1] + Redacted
	})
	s = schemePattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := schemePattern.FindStringSubmatch(m)
		if sub[2] == Redacted || !credentialLike(sub[2]) {
			return m
		}
		return sub[1] + " " + Redacted
	})
	s = kvPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := kvPattern.FindStringSubmatch(m)
		v := sub[2]
		switch {
		case v == Redacted || strings.HasPrefix(v, Redacted):
			return m
		case len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0]:
			return sub[1] + v[:1] + Redacted + v[:1]
		case len(v) >= 2 && v[0] == '[' && v[len(v)-1] == ']':
			return sub[1] + "[" + Redacted + "]"
		}
		return sub[1] + Redacted
	})
	s = jwtPattern.ReplaceAllString(s, Redacted)
	return s
}

// credentialLike tells a credential after "Basic" or "ApiKey" from an
// ordinary word ("Basic authentication failed"): it holds a digit or a
// base64 symbol, or decodes to user:password.
func credentialLike(v string) bool {
	if strings.ContainsAny(v, "0123456789+/=_-") {
		return true
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && strings.Contains(string(b), ":") {
		return true
	}
	return false
}

// triggerStarts has, for each byte, the triggers that start with it in
// either case.
var triggerStarts = func() (t [256][]string) {
	for _, tr := range triggers {
		c := tr[0]
		t[c] = append(t[c], tr)
		if 'a' <= c && c <= 'z' {
			t[c-'a'+'A'] = append(t[c-'a'+'A'], tr)
		}
	}
	return t
}()

// hasTrigger reports whether s contains a trigger, ignoring ASCII case
// (the patterns match ASCII names only), in one pass without copying s.
func hasTrigger(s string) bool {
	for i := 0; i < len(s); i++ {
		for _, t := range triggerStarts[s[i]] {
			if len(s)-i >= len(t) && strings.EqualFold(s[i:i+len(t)], t) {
				return true
			}
		}
	}
	return false
}
