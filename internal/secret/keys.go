package secret

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
)

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

// secretKeys caches IsKey: attribute keys are few and repeat on every
// log record.
var secretKeys sync.Map

const maxCachedKeys = 1024

var secretKeysLen atomic.Int64

// IsKey reports whether an attribute or setting with this key (a name
// such as "password", "SharedAccessKey" or "api_key") holds a secret.
func IsKey(key string) bool {
	if v, ok := secretKeys.Load(key); ok {
		return v.(bool)
	}
	r := isKey(key)
	// Keys come from code, not input, so the cache stays small; the bound
	// guards against a caller that builds keys from data.
	if secretKeysLen.Add(1) <= maxCachedKeys {
		secretKeys.Store(key, r)
	}
	return r
}

// isKey decides IsKey.
func isKey(key string) bool {
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
