// Package alertindex stores alerts in Elasticsearch or OpenSearch indices
// prefix-yyyy.MM, and answers which alerts are already stored: the index
// is the record of what was raised, shared by every instance, so an alert
// found there is not sent anywhere again.
package alertindex

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// Priority of the alerts index template: above the event indices'
// template, whose pattern (prefix-*) also matches the alerts indices.
const Priority = 300

// Assets are what Setup installs: the mappings of the alert document as a
// component template, and the index template of prefix-*.
func Assets(prefix string) ([]bulk.Asset, error) {
	mappings := map[string]any{
		"version":  bulk.SchemaVersion,
		"template": map[string]any{"mappings": Mappings()},
	}
	index := map[string]any{
		"index_patterns": []string{prefix + "-*"},
		"composed_of":    []string{prefix + "@mappings"},
		"priority":       Priority,
		"version":        bulk.SchemaVersion,
		"template":       map[string]any{"settings": map[string]any{"index": map[string]any{"number_of_shards": 1}}},
	}
	m, err := bulk.NewAsset(bulk.KindComponentTemplate, prefix+"@mappings", mappings, mappings, "ECS mappings of SSPR alert documents")
	if err != nil {
		return nil, err
	}
	ix, err := bulk.NewAsset(bulk.KindIndexTemplate, prefix, index, index, "SSPR alert indices "+prefix+"-yyyy.MM")
	if err != nil {
		return nil, err
	}
	return []bulk.Asset{m, ix}, nil
}

// Mappings are the explicit, ECS-typed mappings of every field an alert
// document has; dynamic is false so nothing else is ever mapped.
func Mappings() map[string]any {
	kw := map[string]any{"type": "keyword", "ignore_above": 1024}
	obj := func(props map[string]any) map[string]any { return map[string]any{"properties": props} }
	ref := obj(map[string]any{"id": kw, "name": kw, "reference": kw})
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": map[string]any{"type": "date"},
			"ecs":        obj(map[string]any{"version": kw}),
			"event": obj(map[string]any{
				"kind": kw, "category": kw, "type": kw, "dataset": kw, "id": kw,
				"start": map[string]any{"type": "date"}, "end": map[string]any{"type": "date"},
				"severity": map[string]any{"type": "long"}, "risk_score": map[string]any{"type": "float"},
			}),
			"rule": obj(map[string]any{"id": kw, "name": kw, "description": kw, "version": kw, "ruleset": kw, "reference": kw}),
			"threat": obj(map[string]any{
				"framework": kw, "tactic": ref,
				"technique": obj(map[string]any{"id": kw, "name": kw, "reference": kw, "subtechnique": ref}),
			}),
			"related": obj(map[string]any{"user": kw, "ip": map[string]any{"type": "ip"}}),
			"cloud":   obj(map[string]any{"account": obj(map[string]any{"id": kw})}),
			"user": obj(map[string]any{"name": kw, "id": kw, "target": obj(map[string]any{
				"name": kw, "id": kw, "domain": kw, "group": obj(map[string]any{"name": kw}),
			})}),
			"source": obj(map[string]any{"ip": map[string]any{"type": "ip"}}),
			"entra": obj(map[string]any{"sspr": obj(map[string]any{"alert": obj(map[string]any{
				"key": kw, "key_field": kw, "count": map[string]any{"type": "long"},
				"evidence": kw, "evidence_total": map[string]any{"type": "long"},
			})})}),
		},
	}
}

// Index writes alerts to one cluster.
type Index struct {
	Client bulk.Client
	Red    *secret.Redactor
	Prefix string
}

// Setup installs the templates when missing or different; it reports
// whether it wrote anything.
func (ix *Index) Setup(ctx context.Context, name string, logger *slog.Logger) (bool, error) {
	assets, err := Assets(ix.Prefix)
	if err != nil {
		return false, err
	}
	ad := bulk.Admin{Name: name, Client: ix.Client, Red: ix.Red}
	changed, err := ad.Install(ctx, assets, logger)
	return changed, ad.Redact(err)
}

// Stored returns the ids of the alerts already in their index. It reads
// documents by id, which sees a document as soon as it was written (a
// search would see it only after a refresh).
func (ix *Index) Stored(ctx context.Context, alerts []detect.Alert) (map[string]bool, error) {
	if len(alerts) == 0 {
		return nil, nil
	}
	type ref struct {
		Index string `json:"_index"`
		ID    string `json:"_id"`
	}
	req := struct {
		Docs []ref `json:"docs"`
	}{}
	for i := range alerts {
		req.Docs = append(req.Docs, ref{detect.Index(ix.Prefix, &alerts[i]), alerts[i].ID})
	}
	body, _ := json.Marshal(req)
	res, err := ix.do(ctx, bulk.Request{Method: http.MethodPost, Path: "/_mget?_source=false", Body: body})
	if err != nil {
		return nil, err
	}
	var ans struct {
		Docs []struct {
			ID    string          `json:"_id"`
			Found bool            `json:"found"`
			Error json.RawMessage `json:"error"`
		} `json:"docs"`
	}
	if err := json.Unmarshal(res, &ans); err != nil {
		return nil, fmt.Errorf("alerts index _mget: %w", err)
	}
	out := map[string]bool{}
	for _, d := range ans.Docs {
		// An index that does not exist yet holds no alert: its error
		// (index_not_found) means not found.
		if d.Found {
			out[d.ID] = true
		}
	}
	return out, nil
}

// Create stores each alert under its id unless a document with that id
// is there already, which is not an error: re-evaluation raises the same
// ids.
func (ix *Index) Create(ctx context.Context, alerts []detect.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	var b bytes.Buffer
	for i := range alerts {
		a := &alerts[i]
		fmt.Fprintf(&b, `{"create":{"_index":%q,"_id":%q}}`+"\n", detect.Index(ix.Prefix, a), a.ID)
		doc, err := json.Marshal(a)
		if err != nil {
			return err
		}
		b.Write(doc)
		b.WriteByte('\n')
	}
	res, err := ix.do(ctx, bulk.Request{Method: http.MethodPost, Path: "/_bulk?refresh=false", Body: b.Bytes()})
	if err != nil {
		return err
	}
	var ans struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			ID     string          `json:"_id"`
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(res, &ans); err != nil {
		return fmt.Errorf("alerts index _bulk: %w", err)
	}
	for _, it := range ans.Items {
		for _, r := range it {
			if r.Status >= 300 && r.Status != http.StatusConflict {
				return fmt.Errorf("alerts index: alert %s: status %d: %s", r.ID, r.Status, ix.Red.Redact(string(r.Error)))
			}
		}
	}
	return nil
}

// do sends r and returns the body of a 2xx answer.
func (ix *Index) do(ctx context.Context, r bulk.Request) ([]byte, error) {
	res, err := ix.Client.Do(ctx, r)
	if err != nil {
		return nil, bulk.RedactErr(ix.Red, fmt.Errorf("alerts index %s: %w", r.Path, err))
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return nil, fmt.Errorf("alerts index %s: %s", r.Path, bulk.DescribeFailure(res.StatusCode, res.Body, ix.Red).Desc)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("alerts index %s: %w", r.Path, err)
	}
	return b, nil
}
