package logging

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Mask replaces every secret that redaction finds.
const Mask = secret.Redacted

// MinSecretLen is the shortest registered secret value that is replaced
// wherever it occurs: shorter ones would blank out ordinary words.
const MinSecretLen = 4

// keyWords mark an attribute key (or a key=value name inside text) as
// secret wherever they appear in it, after lower-casing and removing '_',
// '-', '.' and spaces.
var keyWords = []string{
	"password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey",
	"accountkey", "sharedaccess", "connectionstring", "connstr", "authorization",
	"credential", "privatekey", "signature", "sastoken", "cookie",
}

// keyTokens mark a key as secret when they are one of its words
// ("partition_key" and "sig" are, "keyboard" and "signal" are not).
var keyTokens = []string{"key", "pwd", "sig", "sas", "pass", "auth"}

// keyAllowed are keys that contain a secret-looking word but name no
// secret.
var keyAllowed = []string{"sasl"}

// nameWords, as the last word of a key, make it name something about a
// secret rather than the secret: SharedAccessKeyName, key_id,
// sasl_mechanism, token_url, secret_file.
var nameWords = []string{"name", "id", "type", "kind", "url", "uri", "host", "mechanism", "method", "file", "path", "count", "expiry", "expires", "age", "len", "length", "set", "enabled"}

var keySeparators = strings.NewReplacer("_", "", "-", "", ".", "", " ", "")

// secretKeys caches IsSecretKey: attribute keys are few and repeat on
// every record.
var secretKeys sync.Map

// IsSecretKey reports whether an attribute with this key holds a secret.
func IsSecretKey(key string) bool {
	if v, ok := secretKeys.Load(key); ok {
		return v.(bool)
	}
	r := isSecretKey(key)
	// Keys come from code, not input, so the cache stays small; the bound
	// guards against a caller that builds keys from data.
	if secretKeysLen.Add(1) <= maxCachedKeys {
		secretKeys.Store(key, r)
	}
	return r
}

const maxCachedKeys = 1024

var secretKeysLen atomic.Int64

// isSecretKey decides IsSecretKey.
func isSecretKey(key string) bool {
	lk := strings.ToLower(key)
	if slices.Contains(keyAllowed, lk) {
		return false
	}
	words := splitWords(key)
	if len(words) > 1 && slices.Contains(nameWords, words[len(words)-1]) {
		return false
	}
	norm := keySeparators.Replace(lk)
	for _, w := range keyWords {
		if strings.Contains(norm, w) {
			return true
		}
	}
	for _, t := range words {
		if slices.Contains(keyTokens, t) {
			return true
		}
	}
	return false
}

// splitWords splits an identifier at separators and lower-to-upper case
// changes, lower-cased: "SharedAccessKeyName" → shared access key name.
func splitWords(s string) []string {
	var out []string
	var cur []rune
	prevLower := false
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range s {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		cur = append(cur, r)
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
	}
	flush()
	return out
}

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
// authentication scheme, user:password@ in URLs and JSON Web Tokens.
func Redact(s string) string {
	if !hasTrigger(s) {
		return s
	}
	s = userinfoPattern.ReplaceAllString(s, "${1}"+Mask+"@")
	s = authHeaderPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := authHeaderPattern.FindStringSubmatch(m)
		if sub[2] != "" {
			return sub[1] + sub[2] + " " + Mask
		}
		return sub[1] + Mask
	})
	s = schemePattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := schemePattern.FindStringSubmatch(m)
		if sub[2] == Mask || !credentialLike(sub[2]) {
			return m
		}
		return sub[1] + " " + Mask
	})
	s = kvPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := kvPattern.FindStringSubmatch(m)
		v := sub[2]
		switch {
		case v == Mask || strings.HasPrefix(v, Mask):
			return m
		case len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0]:
			return sub[1] + v[:1] + Mask + v[:1]
		case len(v) >= 2 && v[0] == '[' && v[len(v)-1] == ']':
			return sub[1] + "[" + Mask + "]"
		}
		return sub[1] + Mask
	})
	s = jwtPattern.ReplaceAllString(s, Mask)
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

func hasTrigger(s string) bool {
	// Lower-casing only ASCII letters keeps byte offsets and avoids an
	// allocation for strings that are already lower case.
	ls := s
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			ls = strings.ToLower(s)
			break
		}
	}
	for _, t := range triggers {
		if strings.Contains(ls, t) {
			return true
		}
	}
	return false
}

// Redactor redacts the known shapes (Redact) and, in addition, every
// occurrence of the secret values registered with it, such as the
// passwords and keys of the configuration. Safe for concurrent use.
type Redactor struct {
	mu     sync.RWMutex
	values []string
	rep    *strings.Replacer
}

// NewRedactor returns a redactor knowing the given secret values.
func NewRedactor(values ...string) *Redactor {
	r := &Redactor{}
	r.AddSecrets(values...)
	return r
}

// AddSecrets registers secret values (and their URL- and JSON-escaped
// forms) to be replaced wherever they occur. Values shorter than
// MinSecretLen are ignored.
func (r *Redactor) AddSecrets(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A new slice each time: readers hold the old one without the lock.
	r.values = slices.Clone(r.values)
	for _, v := range expandSecrets(values) {
		if len(v) < MinSecretLen {
			continue
		}
		forms := []string{v, url.QueryEscape(v), url.PathEscape(v)}
		if b, err := json.Marshal(v); err == nil {
			forms = append(forms, string(b[1:len(b)-1]))
		}
		for _, f := range forms {
			if !slices.Contains(r.values, f) {
				r.values = append(r.values, f)
			}
		}
	}
	// Longer values first, so that a secret containing another is
	// replaced whole.
	slices.SortFunc(r.values, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(r.values))
	for _, v := range r.values {
		pairs = append(pairs, v, Mask)
	}
	r.rep = strings.NewReplacer(pairs...)
}

// expandSecrets adds the secret parts of connection strings and SAS query
// strings to values: a client library may print the key of a connection
// string without the rest of it.
func expandSecrets(values []string) []string {
	out := slices.Clone(values)
	for _, v := range values {
		for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '&' || r == '?' }) {
			k, val, ok := strings.Cut(part, "=")
			if ok && IsSecretKey(strings.TrimSpace(k)) && val != "" {
				out = append(out, val)
				// A SAS in a connection string is itself
				// "SharedAccessSignature sr=...&sig=...": the loop
				// reaches its sig through the '&' split.
			}
		}
	}
	return out
}

// SecretsIn returns every non-empty secret.String in v (a configuration
// struct, or a pointer, slice or map holding them), to register with
// AddSecretStrings.
func SecretsIn(v any) []secret.String {
	var out []secret.String
	collectSecrets(reflect.ValueOf(v), &out, 0)
	return out
}

var secretType = reflect.TypeFor[secret.String]()

func collectSecrets(v reflect.Value, out *[]secret.String, depth int) {
	// Configuration is a tree of modest depth; the bound stops cycles
	// through pointers.
	if depth > 32 || !v.IsValid() {
		return
	}
	if v.Type() == secretType {
		if s := v.Interface().(secret.String); !s.IsZero() {
			*out = append(*out, s)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collectSecrets(v.Elem(), out, depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				collectSecrets(v.Field(i), out, depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			collectSecrets(v.Index(i), out, depth+1)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			collectSecrets(it.Value(), out, depth+1)
		}
	}
}

// AddSecretStrings registers the values of configuration secrets.
func (r *Redactor) AddSecretStrings(values ...secret.String) {
	vs := make([]string, 0, len(values))
	for _, v := range values {
		vs = append(vs, v.Reveal())
	}
	r.AddSecrets(vs...)
}

// Redact replaces registered values, then the shapes Redact knows.
func (r *Redactor) Redact(s string) string {
	if r != nil {
		r.mu.RLock()
		rep, values := r.rep, r.values
		r.mu.RUnlock()
		// Searching for each value is cheaper than running the replacer
		// over text that, as nearly always, holds none of them.
		for _, v := range values {
			if strings.Contains(s, v) {
				s = rep.Replace(s)
				break
			}
		}
	}
	return Redact(s)
}
