package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// The schema is the Go type of Config: TOML decoding, environment overrides,
// secret resolution, validation and Keys all walk it the same way, so a
// section added to the root struct is covered by all of them.

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
	timeType            = reflect.TypeFor[time.Time]()
	secretType          = reflect.TypeFor[secret.String]()
	validatorType       = reflect.TypeFor[interface{ Validate() []error }]()
)

// field is one configurable struct field.
type field struct {
	name  string // TOML key
	index []int  // for reflect.Value.FieldByIndex
	typ   reflect.Type
}

// fields lists the configurable fields of struct type t: exported, not
// tagged "-", with embedded untagged structs flattened into their parent.
func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if tag == "-" {
			continue
		}
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct && !isLeaf(sf.Type) {
			for _, f := range fields(sf.Type) {
				f.index = append([]int{i}, f.index...)
				out = append(out, f)
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		name := tag
		if name == "" {
			name = snake(sf.Name)
		}
		out = append(out, field{name: name, index: []int{i}, typ: sf.Type})
	}
	return out
}

// snake turns a Go field name into a TOML key for untagged fields.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// kind is how the walk treats a type.
type kind int

const (
	kindLeaf       kind = iota // one value: scalar, duration, secret, list or map of scalars
	kindTable                  // struct: a TOML table
	kindTableArray             // slice of structs: a TOML array of tables
)

func kindOf(t reflect.Type) kind {
	switch {
	case isLeaf(t):
		return kindLeaf
	case t.Kind() == reflect.Struct:
		return kindTable
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !isLeaf(t.Elem()):
		return kindTableArray
	}
	return kindLeaf
}

// isLeaf reports whether t is set as one value rather than walked into.
func isLeaf(t reflect.Type) bool {
	if t == timeType || t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	return t.Kind() != reflect.Struct && !(t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !isLeaf(t.Elem()))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keyError prefixes a component's error with the path of its section.
type keyError struct {
	prefix string
	err    error
}

func (e *keyError) Error() string {
	msg := e.err.Error()
	if strings.HasPrefix(msg, "[") {
		return e.prefix + msg
	}
	return e.prefix + "." + msg
}

func (e *keyError) Unwrap() error { return e.err }

func prefixAll(prefix string, errs []error) []error {
	out := make([]error, 0, len(errs))
	for _, err := range errs {
		if err != nil {
			out = append(out, &keyError{prefix: prefix, err: err})
		}
	}
	return out
}

// validator returns v's Validate method result when its type has one
// (value or pointer receiver).
func validate(v reflect.Value) ([]error, bool) {
	if v.Type().Implements(validatorType) {
		return v.Interface().(interface{ Validate() []error }).Validate(), true
	}
	if reflect.PointerTo(v.Type()).Implements(validatorType) {
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		return p.Interface().(interface{ Validate() []error }).Validate(), true
	}
	return nil, false
}

// validateTree validates the fields of struct v: a field with a Validate
// method answers for everything under it; other structs are walked into.
func validateTree(v reflect.Value, path string) []error {
	var errs []error
	for _, f := range fields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		p := join(path, f.name)
		if e, ok := validate(fv); ok {
			errs = append(errs, prefixAll(p, e)...)
			continue
		}
		switch kindOf(f.typ) {
		case kindTable:
			errs = append(errs, validateTree(fv, p)...)
		case kindTableArray:
			for i := range fv.Len() {
				ep := fmt.Sprintf("%s[%d]", p, i)
				if e, ok := validate(fv.Index(i)); ok {
					errs = append(errs, prefixAll(ep, e)...)
				} else {
					errs = append(errs, validateTree(fv.Index(i), ep)...)
				}
			}
		}
	}
	return errs
}

// errUnsupported marks a Go type the walk cannot set from configuration text.
var errUnsupported = errors.New("unsupported setting type")
