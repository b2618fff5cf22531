package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "SSPR"

// FileSuffix, appended to a secret's variable name, names a variable that
// holds the path of a file containing the secret.
const FileSuffix = "_FILE"

// IndexPlaceholder stands for the element index in the variable names of
// array-of-tables keys: SSPR_CLASSIFY_ACTIVITIES_<N>_NAME.
const IndexPlaceholder = "<N>"

// PathEnv names the variable that gives the configuration file's path to
// the commands when their --config flag is not set.
const PathEnv = "SSPR_CONFIG"

// PathFromEnv returns the configuration file's path that environ gives in
// PathEnv, or "".
func PathFromEnv(environ []string) string { return parseEnviron(environ)[PathEnv] }

// notKeys are SSPR_* variables with other meanings, which must not be
// reported as unknown overrides: the configuration file's path for the
// command, and the test harness's switches.
var notKeys = []string{PathEnv, "SSPR_REQUIRE_SERVERS", "SSPR_TEST_CACHE", "SSPR_SHARED_TESTDATA", "SSPR_FUZZTIME"}

// EnvName returns the environment variable that overrides the key at path:
// SSPR_ then the path upper-cased with '.' and '-' as '_'. An element of an
// array of tables is written path[] ("classify.activities[].name") and its
// variable has IndexPlaceholder where the index goes.
func EnvName(path string) string {
	path = strings.ReplaceAll(path, "[]", "_"+IndexPlaceholder)
	r := strings.NewReplacer(".", "_", "-", "_")
	return EnvPrefix + "_" + strings.ToUpper(r.Replace(path))
}

func envKey(parent, name string) string {
	return parent + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseEnviron turns KEY=VALUE strings into a map; a later duplicate wins,
// as it does for os/exec.
func parseEnviron(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// applyEnv sets every leaf of struct v that has an SSPR_* variable.
// It reports whether any variable applied.
func (l *loader) applyEnv(v reflect.Value, path, env string) bool {
	applied := false
	for _, f := range fields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		p, e := join(path, f.name), envKey(env, f.name)
		switch kindOf(f.typ) {
		case kindTable:
			applied = l.applyEnv(fv, p, e) || applied
		case kindTableArray:
			applied = l.applyEnvArray(fv, p, e) || applied
		default:
			applied = l.applyEnvLeaf(fv, p, e) || applied
		}
	}
	return applied
}

func (l *loader) applyEnvLeaf(v reflect.Value, path, env string) bool {
	s, ok := l.lookup(env)
	if v.Type() == secretType {
		fileVar := env + FileSuffix
		fs, fok := l.lookup(fileVar)
		switch {
		case ok && fok:
			l.problem(path, fmt.Sprintf("set by both %s and %s; use one", env, fileVar))
			return true
		case fok:
			b, err := os.ReadFile(fs)
			if err != nil {
				l.problem(path, fmt.Sprintf("environment variable %s: %v", fileVar, err))
				return true
			}
			l.setText(v, trimNewline(string(b)), path, fileVar)
			// The file's content is the secret itself, not a reference.
			l.literal[path] = true
			return true
		}
	}
	if !ok {
		return false
	}
	l.parseEnvValue(s, v, path, env)
	return true
}

// applyEnvArray applies the variable for the whole array (a TOML inline
// array) and then the per-element variables PREFIX_<i>_..., where i may
// extend the array by one element at a time.
func (l *loader) applyEnvArray(v reflect.Value, path, env string) bool {
	applied := l.applyEnvLeaf(v, path, env)
	var indexes []int
	seen := map[int]bool{}
	for k := range l.env {
		rest, ok := strings.CutPrefix(k, env+"_")
		if !ok {
			continue
		}
		digits, _, ok := strings.Cut(rest, "_")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(digits)
		if err != nil || i < 0 || strconv.Itoa(i) != digits || seen[i] {
			continue
		}
		seen[i] = true
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	for _, i := range indexes {
		ep, ee := fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%s_%d", env, i)
		if i < v.Len() {
			applied = l.applyEnv(v.Index(i), ep, ee) || applied
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		if !l.applyEnv(elem, ep, ee) {
			continue // nothing matched: left for the unknown-variable warning
		}
		applied = true
		if i > v.Len() {
			l.problem(ep, fmt.Sprintf("environment variables %s_*: index %d leaves a gap after the %d entries of %s", ee, i, v.Len(), path))
			continue
		}
		v.Set(reflect.Append(v, elem))
	}
	return applied
}

func (l *loader) lookup(name string) (string, bool) {
	s, ok := l.env[name]
	if ok {
		l.used[name] = true
	}
	return s, ok
}

// unknownEnv returns the SSPR_* variables no key consumed, sorted.
func (l *loader) unknownEnv() []string {
	var out []string
	for k := range l.env {
		if strings.HasPrefix(k, EnvPrefix+"_") && !l.used[k] && !slices.Contains(notKeys, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func trimNewline(s string) string {
	return strings.TrimRight(s, "\r\n")
}
