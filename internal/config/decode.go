package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The TOML text is parsed into generic values and then assigned field by
// field against the schema, rather than decoded straight into the struct,
// so that every unknown key and every mistyped value is reported, each with
// its full path, instead of only the first.

// decodeTOML assigns the parsed document m onto struct v. Values of secret
// settings never appear in the problems.
func (l *loader) decodeTOML(m map[string]any, v reflect.Value) {
	l.table(m, v, "")
}

func (l *loader) table(m map[string]any, v reflect.Value, path string) {
	byName := map[string]field{}
	for _, f := range fields(v.Type()) {
		byName[f.name] = f
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, ok := byName[k]
		if !ok {
			l.problem(join(path, k), "unknown key")
			continue
		}
		l.value(m[k], v.FieldByIndex(f.index), join(path, k))
	}
}

// value assigns the TOML value data to v.
func (l *loader) value(data any, v reflect.Value, path string) {
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := data.(string)
		if !ok {
			l.problem(path, fmt.Sprintf("must be a duration string like \"5s\" (got %s)", tomlType(data)))
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			l.problem(path, fmt.Sprintf("invalid duration %q: want a number with a unit, like \"500ms\", \"5s\" or \"1h\"", s))
			return
		}
		v.SetInt(int64(d))
		return
	case t == timeType:
		tm, ok := data.(time.Time)
		if !ok {
			l.problem(path, fmt.Sprintf("must be a date-time (got %s)", tomlType(data)))
			return
		}
		v.Set(reflect.ValueOf(tm))
		return
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		s, ok := data.(string)
		if !ok {
			l.problem(path, fmt.Sprintf("must be a string (got %s)", tomlType(data)))
			return
		}
		l.setText(v, s, path, "")
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := data.(map[string]any)
		if !ok {
			l.problem(path, fmt.Sprintf("must be a table (got %s)", tomlType(data)))
			return
		}
		l.table(m, v, path)
	case reflect.Slice:
		var items []any
		switch d := data.(type) {
		case []any:
			items = d
		case []map[string]any:
			for _, m := range d {
				items = append(items, m)
			}
		default:
			l.problem(path, fmt.Sprintf("must be an array (got %s)", tomlType(data)))
			return
		}
		out := reflect.MakeSlice(t, len(items), len(items))
		before := len(l.problems)
		for i, item := range items {
			l.value(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		// A half-decoded list would only add validation noise.
		if len(l.problems) == before {
			v.Set(out)
		}
	case reflect.Map:
		m, ok := data.(map[string]any)
		if !ok || t.Key().Kind() != reflect.String {
			l.problem(path, fmt.Sprintf("must be a table (got %s)", tomlType(data)))
			return
		}
		out := reflect.MakeMapWithSize(t, len(m))
		before := len(l.problems)
		for k, item := range m {
			ev := reflect.New(t.Elem()).Elem()
			l.value(item, ev, join(path, k))
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		if len(l.problems) == before {
			v.Set(out)
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf(data))
	default:
		l.scalar(data, v, path)
	}
}

// scalar assigns a TOML string, boolean, integer or float to v.
func (l *loader) scalar(data any, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		s, ok := data.(string)
		if !ok {
			l.problem(path, fmt.Sprintf("must be a string (got %s)", tomlType(data)))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := data.(bool)
		if !ok {
			l.problem(path, fmt.Sprintf("must be true or false (got %s)", tomlType(data)))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := data.(int64)
		if !ok {
			l.problem(path, fmt.Sprintf("must be an integer (got %s)", tomlType(data)))
			return
		}
		if v.OverflowInt(n) {
			l.problem(path, fmt.Sprintf("%d is out of range", n))
			return
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := data.(int64)
		if !ok {
			l.problem(path, fmt.Sprintf("must be an integer (got %s)", tomlType(data)))
			return
		}
		if n < 0 || v.OverflowUint(uint64(n)) {
			l.problem(path, fmt.Sprintf("%d is out of range", n))
			return
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		var f float64
		switch d := data.(type) {
		case float64:
			f = d
		case int64:
			f = float64(d)
		default:
			l.problem(path, fmt.Sprintf("must be a number (got %s)", tomlType(data)))
			return
		}
		if v.OverflowFloat(f) {
			l.problem(path, fmt.Sprintf("%g is out of range", f))
			return
		}
		v.SetFloat(f)
	default:
		l.problem(path, fmt.Sprintf("%v: %s", errUnsupported, v.Type()))
	}
}

// setText sets a TextUnmarshaler (a secret, for one) from s. envVar, when
// set, is named in the problem instead of the TOML key's value.
func (l *loader) setText(v reflect.Value, s, path, envVar string) {
	u := v.Addr().Interface().(encoding.TextUnmarshaler)
	if err := u.UnmarshalText([]byte(s)); err != nil {
		// The parser's message may quote the text, which may be secret.
		if v.Type() == secretType {
			l.problem(path, "invalid value"+viaEnv(envVar))
			return
		}
		l.problem(path, fmt.Sprintf("invalid value%s: %v", viaEnv(envVar), err))
	}
}

func viaEnv(envVar string) string {
	if envVar == "" {
		return ""
	}
	return " in environment variable " + envVar
}

// tomlType names the TOML type of a parsed value for messages.
func tomlType(data any) string {
	switch data.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", data)
}

// parseEnvValue sets leaf v from the text of environment variable envVar.
// Secret values never appear in problems.
func (l *loader) parseEnvValue(s string, v reflect.Value, path, envVar string) {
	t := v.Type()
	bad := func(want string) {
		if t == secretType {
			l.problem(path, fmt.Sprintf("environment variable %s: must be %s", envVar, want))
			return
		}
		l.problem(path, fmt.Sprintf("environment variable %s: must be %s (got %q)", envVar, want, s))
	}
	switch {
	case t == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			bad(`a duration like "5s"`)
			return
		}
		v.SetInt(int64(d))
		return
	case t == timeType:
		tm, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
		if err != nil {
			bad("an RFC 3339 date-time")
			return
		}
		v.Set(reflect.ValueOf(tm))
		return
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		l.setText(v, s, path, envVar)
		return
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			bad("true or false")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, t.Bits())
		if err != nil {
			bad(fmt.Sprintf("an integer that fits in %d bits", t.Bits()))
			return
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, t.Bits())
		if err != nil {
			bad(fmt.Sprintf("a non-negative integer that fits in %d bits", t.Bits()))
			return
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), t.Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad("a finite number")
			return
		}
		v.SetFloat(f)
	case reflect.Slice, reflect.Map:
		l.parseEnvList(s, v, path, envVar)
	default:
		l.problem(path, fmt.Sprintf("environment variable %s: %v: %s", envVar, errUnsupported, t))
	}
}

// parseEnvList sets a list or map from an environment variable. A value
// starting with '[' (or '{' for a map) is a TOML inline array (table), which
// also carries items containing commas and arrays of tables; otherwise items
// are separated by commas (map entries written key=value) with surrounding
// spaces trimmed.
func (l *loader) parseEnvList(s string, v reflect.Value, path, envVar string) {
	t := v.Type()
	trimmed := strings.TrimSpace(s)
	if strings.HasPrefix(trimmed, "[") || strings.HasPrefix(trimmed, "{") || kindOf(t) == kindTableArray {
		var doc map[string]any
		if _, err := toml.Decode("v = "+trimmed, &doc); err != nil {
			l.problem(path, fmt.Sprintf("environment variable %s: not a TOML inline %s", envVar, map[bool]string{true: "table", false: "array"}[t.Kind() == reflect.Map]))
			return
		}
		sub := &loader{env: l.env}
		sub.value(doc["v"], v, path)
		for _, p := range sub.problems {
			l.problems = append(l.problems, fmt.Errorf("%w (from environment variable %s)", p, envVar))
		}
		return
	}
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	if t.Kind() == reflect.Map {
		if t.Key().Kind() != reflect.String {
			l.problem(path, fmt.Sprintf("environment variable %s: %v: %s", envVar, errUnsupported, t))
			return
		}
		out := reflect.MakeMapWithSize(t, len(items))
		before := len(l.problems)
		for _, item := range items {
			k, val, ok := strings.Cut(item, "=")
			if !ok {
				l.problem(path, fmt.Sprintf("environment variable %s: map entries are written key=value", envVar))
				return
			}
			ev := reflect.New(t.Elem()).Elem()
			l.parseEnvValue(strings.TrimSpace(val), ev, join(path, strings.TrimSpace(k)), envVar)
			out.SetMapIndex(reflect.ValueOf(strings.TrimSpace(k)).Convert(t.Key()), ev)
		}
		if len(l.problems) == before {
			v.Set(out)
		}
		return
	}
	out := reflect.MakeSlice(t, len(items), len(items))
	before := len(l.problems)
	for i, item := range items {
		l.parseEnvValue(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i), envVar)
	}
	if len(l.problems) == before {
		v.Set(out)
	}
}
