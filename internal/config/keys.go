package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// keyInfo describes one configuration key, for the tests that hold the
// schema, the environment and the example file together.
type keyInfo struct {
	Path    string // TOML key path; elements of arrays of tables as "classify.activities[].name"
	Env     string // overriding environment variable; "" for an element of an array of tables
	EnvFile string // for secrets: the variable naming a file that holds the value
	Type    string // string, bool, int, int64, float64, duration, secret, []string, array of tables...
	Default string // the value in c, written as it would be in the variable; secrets redacted
	Secret  bool
}

// allKeys lists every key of the schema in declaration order, with its
// value in c. An array of tables is listed as one key (set whole, as a TOML
// inline array, by its variable) followed by the keys of its elements,
// which have no variables.
func allKeys(c Config) []keyInfo {
	return keysOf(reflect.ValueOf(c), "")
}

func keysOf(v reflect.Value, path string) []keyInfo {
	var out []keyInfo
	for _, f := range fields(v.Type()) {
		var fv reflect.Value
		if v.IsValid() {
			fv = v.FieldByIndex(f.index)
		}
		p := join(path, f.name)
		switch kindOf(f.typ) {
		case kindTable:
			if !fv.IsValid() {
				fv = reflect.New(f.typ).Elem()
			}
			out = append(out, keysOf(fv, p)...)
		case kindTableArray:
			out = append(out, leafInfo(fv, f.typ, p))
			// Element keys show the zero element: arrays have no per-element default.
			for _, k := range keysOf(reflect.New(f.typ.Elem()).Elem(), p+"[]") {
				k.Env, k.EnvFile = "", ""
				out = append(out, k)
			}
		default:
			out = append(out, leafInfo(fv, f.typ, p))
		}
	}
	return out
}

func leafInfo(v reflect.Value, t reflect.Type, path string) keyInfo {
	k := keyInfo{Path: path, Env: envName(path), Type: typeName(t), Secret: t == secretType}
	if k.Secret || (t.Kind() == reflect.Slice && t.Elem() == secretType) {
		k.Secret = true
		k.EnvFile = k.Env + FileSuffix
		if t.Kind() == reflect.Slice {
			k.EnvFile = "" // a list of secrets is set whole, not from one file
		}
	}
	if v.IsValid() {
		k.Default = formatValue(v)
	}
	return k
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t == secretType:
		return "secret"
	case t == timeType:
		return "date-time"
	case kindOf(t) == kindTableArray:
		return "array of tables"
	case t.Kind() == reflect.Slice:
		return "[]" + typeName(t.Elem())
	case t.Kind() == reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	}
	return t.Kind().String()
}

// formatValue writes v as it would be given in its environment variable.
func formatValue(v reflect.Value) string {
	t := v.Type()
	switch {
	case t == durationType:
		return time.Duration(v.Int()).String()
	case t == timeType:
		return v.Interface().(time.Time).Format(time.RFC3339Nano)
	case kindOf(t) == kindTableArray:
		if v.Len() == 0 {
			return "[]"
		}
		return fmt.Sprintf("[%d entries]", v.Len())
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		// secret.String prints redacted.
		return s.String()
	}
	switch t.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		var parts []string
		iter := v.MapRange()
		for iter.Next() {
			parts = append(parts, fmt.Sprint(iter.Key().Interface())+"="+formatValue(iter.Value()))
		}
		slices.Sort(parts)
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}
