package bulktest

import (
	"encoding/json"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// NodeAssets is what the Elasticsearch test nodes take of the shipped
// assets: they run without the ILM plugin (no ILM API; index.lifecycle.*
// is an unknown setting) and without the mapper-extras module (no
// match_only_text), so the ILM policy is left out, the lifecycle settings
// are taken out, and match_only_text becomes text. The content hashes stay
// the shipped ones: setup and check compare what the node holds with what
// this version installs. Nothing else changes (the Elasticsearch output's
// TestNodeAssetsDifferOnlyThere proves it).
func NodeAssets(shipped []bulk.Asset) ([]bulk.Asset, error) {
	var out []bulk.Asset
	for _, a := range shipped {
		if a.Kind == bulk.KindILMPolicy {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(a.Body, &v); err != nil {
			return nil, err
		}
		if idx, ok := Dig(v, "template", "settings", "index").(map[string]any); ok {
			delete(idx, "lifecycle")
		}
		replaceType(v, "match_only_text", "text")
		body, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, err
		}
		a.Body = append(body, '\n')
		out = append(out, a)
	}
	return out, nil
}

// Dig returns the value at path in a decoded JSON object, or nil.
func Dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func replaceType(v any, from, to string) {
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == from {
			x["type"] = to
		}
		for _, e := range x {
			replaceType(e, from, to)
		}
	case []any:
		for _, e := range x {
			replaceType(e, from, to)
		}
	}
}
