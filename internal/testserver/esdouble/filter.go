package esdouble

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path"
	"strings"
)

// filtered is a ResponseWriter that holds a JSON answer back, so that the
// filter_path of the request can be applied to it as a node does.
type filtered struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	bypass bool // the answer went out already filtered
}

func (f *filtered) WriteHeader(status int) { f.status = status }
func (f *filtered) Write(b []byte) (int, error) {
	return f.body.Write(b)
}

// flush writes the held answer, filtered by patterns.
func (f *filtered) flush(patterns string) {
	if f.bypass {
		return
	}
	body := f.body.Bytes()
	var v any
	if f.body.Len() > 0 && json.Unmarshal(body, &v) == nil {
		out, ok := filterValue(v, splitPatterns(patterns))
		if !ok {
			out = map[string]any{}
		}
		body, _ = json.Marshal(out)
	}
	if f.status == 0 {
		f.status = http.StatusOK
	}
	f.ResponseWriter.WriteHeader(f.status)
	_, _ = f.ResponseWriter.Write(body)
}

func splitPatterns(s string) [][]string {
	var out [][]string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.Split(p, "."))
		}
	}
	return out
}

// filterValue keeps of v what one of the patterns (dotted keys, "*" for
// any key, arrays passed through) reaches, and reports whether anything
// was kept.
func filterValue(v any, patterns [][]string) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			var deeper [][]string
			whole := false
			for _, p := range patterns {
				if ok, _ := path.Match(p[0], k); !ok {
					continue
				}
				if len(p) == 1 {
					whole = true
				} else {
					deeper = append(deeper, p[1:])
				}
			}
			switch {
			case whole:
				out[k] = e
			case len(deeper) > 0:
				if fe, ok := filterValue(e, deeper); ok {
					out[k] = fe
				}
			}
		}
		return out, len(out) > 0
	case []any:
		var out []any
		for _, e := range x {
			if fe, ok := filterValue(e, patterns); ok {
				out = append(out, fe)
			}
		}
		return out, len(out) > 0
	default:
		// A value where the pattern goes deeper: nothing of it matches.
		return nil, false
	}
}
