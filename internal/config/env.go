package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
)

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "SSPR"

// FileSuffix, appended to a secret's variable name, names a variable that
// holds the path of a file containing the secret.
const FileSuffix = "_FILE"

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

// envName returns the environment variable that overrides the key at path:
// SSPR_ then the path upper-cased with '.' and '-' as '_'.
func envName(path string) string {
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

// applyEnv sets every key under struct v that has an SSPR_* variable. An
// array of tables is one key: its variable holds a TOML inline array, and
// its elements have no variables of their own.
func (l *loader) applyEnv(v reflect.Value, path, env string) {
	for _, f := range fields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		p, e := join(path, f.name), envKey(env, f.name)
		if kindOf(f.typ) == kindTable {
			l.applyEnv(fv, p, e)
			continue
		}
		l.applyEnvLeaf(fv, p, e)
	}
}

func (l *loader) applyEnvLeaf(v reflect.Value, path, env string) {
	s, ok := l.lookup(env)
	if v.Type() == secretType {
		fileVar := env + FileSuffix
		fs, fok := l.lookup(fileVar)
		switch {
		case ok && fok:
			l.problem(path, fmt.Sprintf("set by both %s and %s; use one", env, fileVar))
			return
		case fok:
			b, err := os.ReadFile(fs)
			if err != nil {
				l.problem(path, fmt.Sprintf("environment variable %s: %v", fileVar, err))
				return
			}
			l.setText(v, trimNewline(string(b)), path, fileVar)
			// The file's content is the secret itself, not a reference.
			l.literal[path] = true
			return
		}
	}
	if ok {
		l.parseEnvValue(s, v, path, env)
	}
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
