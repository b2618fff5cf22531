package graphapi

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// parseFilter compiles the part of OData $filter that directoryAudits
// supports and a backfill uses: comparisons (eq, ne, gt, ge, lt, le) of a
// property (a path with '/', such as initiatedBy/user/id) with a quoted
// string, a number, true/false or an unquoted DateTimeOffset, and
// startswith(property,'prefix'), joined by and / or, with parentheses.
// Strings compare case-insensitively, as the directory does. allow, when
// set, refuses the comparisons the resource does not support; maxTerms,
// when positive, bounds the comparisons of one expression.
func parseFilter(s string, allow func(prop, op string) error, maxTerms int) (func(map[string]any) bool, error) {
	p := &filterParser{toks: tokenize(s), allow: allow}
	if len(p.toks) == 0 {
		return nil, errors.New("empty expression")
	}
	f, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	if maxTerms > 0 && p.terms > maxTerms {
		return nil, fmt.Errorf("the expression has %d comparisons; at most %d are supported", p.terms, maxTerms)
	}
	return f, nil
}

// directoryAuditFilters are the properties and operators the
// directoryAudit resource documents for $filter.
var directoryAuditFilters = map[string][]string{
	"activitydatetime":                   {"eq", "ge", "le"},
	"activitydisplayname":                {"eq", "startswith"},
	"loggedbyservice":                    {"eq"},
	"correlationid":                      {"eq"},
	"id":                                 {"eq"},
	"initiatedby/user/id":                {"eq"},
	"initiatedby/user/displayname":       {"eq"},
	"initiatedby/user/userprincipalname": {"eq", "startswith"},
	"initiatedby/app/appid":              {"eq"},
	"initiatedby/app/displayname":        {"eq"},
}

// allowDirectoryAudits refuses what the resource does not support.
func allowDirectoryAudits(prop, op string) error {
	ops, ok := directoryAuditFilters[strings.ToLower(prop)]
	if !ok {
		return fmt.Errorf("property '%s' does not support filtering", prop)
	}
	if !slices.Contains(ops, op) {
		return fmt.Errorf("operator '%s' is not supported for property '%s'", op, prop)
	}
	return nil
}

type filterParser struct {
	toks  []string
	i     int
	allow func(prop, op string) error
	terms int
}

func (p *filterParser) check(prop, op string) error {
	p.terms++
	if p.allow == nil {
		return nil
	}
	return p.allow(prop, op)
}

func (p *filterParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *filterParser) next() string {
	t := p.peek()
	p.i++
	return t
}

func (p *filterParser) or() (func(map[string]any) bool, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "or") {
		p.next()
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(m map[string]any) bool { return l(m) || right(m) }
	}
	return left, nil
}

func (p *filterParser) and() (func(map[string]any) bool, error) {
	left, err := p.term()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "and") {
		p.next()
		right, err := p.term()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(m map[string]any) bool { return l(m) && right(m) }
	}
	return left, nil
}

func (p *filterParser) term() (func(map[string]any) bool, error) {
	t := p.next()
	switch {
	case t == "(":
		f, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, errors.New("missing ')'")
		}
		return f, nil
	case strings.EqualFold(t, "startswith"):
		if p.next() != "(" {
			return nil, errors.New("startswith needs '('")
		}
		prop := p.next()
		if err := p.check(prop, "startswith"); err != nil {
			return nil, err
		}
		if p.next() != "," {
			return nil, errors.New("startswith needs two arguments")
		}
		lit, err := literal(p.next())
		if err != nil {
			return nil, err
		}
		prefix, ok := lit.(string)
		if !ok {
			return nil, errors.New("startswith needs a string")
		}
		if p.next() != ")" {
			return nil, errors.New("missing ')'")
		}
		return func(m map[string]any) bool {
			v, ok := lookup(m, prop).(string)
			return ok && strings.HasPrefix(strings.ToLower(v), strings.ToLower(prefix))
		}, nil
	case t == "" || t == ")" || t == ",":
		return nil, errors.New("expression expected")
	}
	prop, op := t, strings.ToLower(p.next())
	switch op {
	case "eq", "ne", "gt", "ge", "lt", "le":
	default:
		return nil, fmt.Errorf("unsupported operator %q", op)
	}
	if err := p.check(prop, op); err != nil {
		return nil, err
	}
	lit, err := literal(p.next())
	if err != nil {
		return nil, err
	}
	return func(m map[string]any) bool { return compare(lookup(m, prop), op, lit) }, nil
}

// tokenize splits a $filter into names, literals and punctuation; quoted
// strings keep their quotes (a doubled quote is a quote inside one).
func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, string(c))
			i++
		case c == '\'':
			j := i + 1
			for j < len(s) {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, s[i:min(j+1, len(s))])
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t(),'", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

// literal reads a string, number, boolean, null or DateTimeOffset.
func literal(t string) (any, error) {
	switch {
	case strings.HasPrefix(t, "'"):
		if len(t) < 2 || !strings.HasSuffix(t, "'") {
			return nil, errors.New("unterminated string")
		}
		return strings.ReplaceAll(t[1:len(t)-1], "''", "'"), nil
	case t == "true" || t == "false":
		return t == "true", nil
	case t == "null":
		return nil, nil
	}
	if ts, err := time.Parse(time.RFC3339Nano, t); err == nil {
		return ts, nil
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		return f, nil
	}
	return nil, fmt.Errorf("unsupported literal %q", t)
}

// lookup follows a property path through nested objects.
func lookup(m map[string]any, path string) any {
	var v any = m
	for _, seg := range strings.Split(path, "/") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[seg]
	}
	return v
}

func compare(v any, op string, lit any) bool {
	c, ok := order(v, lit)
	if !ok {
		switch op {
		case "eq":
			return v == nil && lit == nil
		case "ne":
			return !(v == nil && lit == nil)
		}
		return false
	}
	switch op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	}
	return c <= 0
}

// order compares a property value with a literal of the same kind; a
// DateTimeOffset literal compares with a string property holding one.
func order(v, lit any) (int, bool) {
	switch l := lit.(type) {
	case time.Time:
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, false
		}
		return t.Compare(l), true
	case string:
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(strings.ToLower(s), strings.ToLower(l)), true
	case float64:
		f, ok := v.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case f < l:
			return -1, true
		case f > l:
			return 1, true
		}
		return 0, true
	case bool:
		b, ok := v.(bool)
		if !ok || b != l {
			return 1, ok
		}
		return 0, true
	}
	return 0, false
}
