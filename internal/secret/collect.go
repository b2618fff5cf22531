package secret

import (
	"reflect"
	"strings"
)

var stringType = reflect.TypeFor[String]()

// In returns every non-empty String in v (a configuration struct, or a
// pointer, slice, array or map holding them) and, for each struct that
// holds a user name (a string field Username or User) beside a Password,
// the pair "user:password" that HTTP Basic authentication and SASL PLAIN
// send: pass them all to Redactor.AddStrings.
func In(v any) []String {
	var out []String
	collect(reflect.ValueOf(v), &out, 0)
	return out
}

func collect(v reflect.Value, out *[]String, depth int) {
	// Configuration is a tree of modest depth; the bound stops cycles
	// through pointers.
	if depth > 32 || !v.IsValid() {
		return
	}
	if v.Type() == stringType {
		if s := v.Interface().(String); !s.IsZero() {
			*out = append(*out, s)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collect(v.Elem(), out, depth+1)
		}
	case reflect.Struct:
		if p, ok := basicPair(v); ok {
			*out = append(*out, p)
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				collect(v.Field(i), out, depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			collect(v.Index(i), out, depth+1)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			collect(it.Value(), out, depth+1)
		}
	}
}

// basicPair returns "user:password" of a struct with both set.
func basicPair(v reflect.Value) (String, bool) {
	var user string
	var pass String
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case !f.IsExported():
		case f.Type == stringType && f.Name == "Password":
			pass = v.Field(i).Interface().(String)
		case f.Type.Kind() == reflect.String && (strings.EqualFold(f.Name, "Username") || strings.EqualFold(f.Name, "User")):
			user = v.Field(i).String()
		}
	}
	if user == "" || pass.IsZero() {
		return String{}, false
	}
	return New(user + ":" + pass.Reveal()), true
}
