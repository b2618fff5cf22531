package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Secret reference prefixes: a secret setting whose value starts with one
// of these is read from the named environment variable or file instead.
const (
	RefEnv  = "env:"
	RefFile = "file:"
)

// Error is what Load returns when the configuration has problems: all of
// them, each message starting with the key path it concerns.
type Error struct {
	File     string // the configuration file, "" when none was read
	Problems []error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": " + e.Problems[0].Error())
		return b.String()
	}
	fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error { return e.Problems }

// Load reads the TOML file at path onto Default(), applies the SSPR_*
// variables of environ (KEY=VALUE strings, as from os.Environ), resolves
// secret references and validates the result. An empty path reads no file.
// On problems it returns an *Error listing all of them; secret values never
// appear in it. Variables that match no key are returned in UnknownEnv.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	l := newLoader(environ)
	l.load(data, path != "", reflect.ValueOf(&cfg).Elem())
	cfg.UnknownEnv = l.unknownEnv()
	problems := append(l.problems, cfg.Validate()...)
	if len(problems) > 0 {
		return cfg, &Error{File: path, Problems: problems}
	}
	return cfg, nil
}

// loader carries one load's environment and problems.
type loader struct {
	env      map[string]string
	used     map[string]bool
	literal  map[string]bool // secret paths already holding the secret itself
	problems []error
}

func newLoader(environ []string) *loader {
	return &loader{env: parseEnviron(environ), used: map[string]bool{}, literal: map[string]bool{}}
}

func (l *loader) problem(path, msg string) {
	if path == "" {
		l.problems = append(l.problems, errors.New(msg))
		return
	}
	l.problems = append(l.problems, fmt.Errorf("%s: %s", path, msg))
}

// load fills the struct v from TOML data (when hasFile), then the
// environment, then resolves secret references.
func (l *loader) load(data []byte, hasFile bool, v reflect.Value) {
	if hasFile {
		var doc map[string]any
		if _, err := toml.Decode(string(data), &doc); err != nil {
			l.syntaxProblem(err, v.Type())
		} else {
			l.decodeTOML(doc, v)
		}
	}
	l.applyEnv(v, "", EnvPrefix)
	l.resolveSecrets(v, "")
}

// syntaxProblem reports a TOML syntax error. The parser quotes the text it
// choked on, which is hidden when the last key read is a secret setting.
func (l *loader) syntaxProblem(err error, root reflect.Type) {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		l.problem("", fmt.Sprintf("toml: %v", err))
		return
	}
	msg := pe.Message
	if pe.LastKey != "" && isSecretPath(root, pe.LastKey) {
		msg = "syntax error in a secret value (details hidden)"
	}
	if pe.LastKey != "" {
		l.problem(pe.LastKey, fmt.Sprintf("toml syntax error at line %d: %s", pe.Position.Line, msg))
		return
	}
	l.problem("", fmt.Sprintf("toml syntax error at line %d: %s", pe.Position.Line, msg))
}

// isSecretPath reports whether the dotted TOML key names a secret setting
// (array indexes are not part of TOML key paths).
func isSecretPath(t reflect.Type, key string) bool {
	for part := range strings.SplitSeq(key, ".") {
		for t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || isLeaf(t) {
			return false
		}
		found := false
		for _, f := range fields(t) {
			if f.name == strings.Trim(part, `"`) {
				t, found = f.typ, true
				break
			}
		}
		if !found {
			return false
		}
	}
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	return t == secretType
}

// resolveSecrets replaces env: and file: references in every secret
// setting under struct v with what they point to.
func (l *loader) resolveSecrets(v reflect.Value, path string) {
	for _, f := range fields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		p := join(path, f.name)
		switch {
		case f.typ == secretType:
			l.resolveSecret(fv, p)
		case f.typ.Kind() == reflect.Slice && f.typ.Elem() == secretType:
			for i := range fv.Len() {
				l.resolveSecret(fv.Index(i), fmt.Sprintf("%s[%d]", p, i))
			}
		case kindOf(f.typ) == kindTable:
			l.resolveSecrets(fv, p)
		case kindOf(f.typ) == kindTableArray:
			for i := range fv.Len() {
				l.resolveSecrets(fv.Index(i), fmt.Sprintf("%s[%d]", p, i))
			}
		}
	}
}

func (l *loader) resolveSecret(v reflect.Value, path string) {
	if l.literal[path] {
		return
	}
	raw := v.Interface().(secret.String).Reveal()
	switch {
	case strings.HasPrefix(raw, RefEnv):
		name := strings.TrimPrefix(raw, RefEnv)
		val, ok := l.env[name]
		if !ok || name == "" {
			v.Set(reflect.ValueOf(secret.String{}))
			l.problem(path, fmt.Sprintf("secret reference %s%s: environment variable not set", RefEnv, name))
			return
		}
		v.Set(reflect.ValueOf(secret.New(val)))
	case strings.HasPrefix(raw, RefFile):
		name := strings.TrimPrefix(raw, RefFile)
		b, err := os.ReadFile(name)
		if err != nil {
			v.Set(reflect.ValueOf(secret.String{}))
			l.problem(path, fmt.Sprintf("secret reference %s%s: %v", RefFile, name, pathErrOnly(err)))
			return
		}
		v.Set(reflect.ValueOf(secret.New(trimNewline(string(b)))))
	}
}

// pathErrOnly keeps the operation and cause of a file error without
// repeating the path the caller already names.
func pathErrOnly(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
