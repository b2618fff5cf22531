package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// SchemaVersion is bumped whenever the mappings, settings or policy shape
// change; it is stored in each object's _meta and version.
const SchemaVersion = 1

// Asset kinds.
const (
	KindILMPolicy         = "ilm_policy"
	KindComponentTemplate = "component_template"
	KindIndexTemplate     = "index_template"
)

// Asset is one object Setup installs: an ILM policy, a component template
// or the index template, with the exact body it sends.
type Asset struct {
	Kind string
	Name string
	Body []byte // indented JSON, as sent and as shipped in deploy/elasticsearch
	Hash string // _meta.content_hash inside Body
}

// Path is the API path the asset is PUT to and read from.
func (a Asset) Path() string {
	switch a.Kind {
	case KindILMPolicy:
		return "/_ilm/policy/" + a.Name
	case KindComponentTemplate:
		return "/_component_template/" + a.Name
	default:
		return "/_index_template/" + a.Name
	}
}

// FileName is the asset's file name in deploy/elasticsearch.
func (a Asset) FileName() string {
	return map[string]string{KindILMPolicy: "ilm-policy", KindComponentTemplate: "component-template", KindIndexTemplate: "index-template"}[a.Kind] +
		"-" + a.Name + ".json"
}

// Assets returns what Setup installs for cfg, in installation order.
func Assets(cfg Config) ([]Asset, error) {
	p := cfg.Index.Prefix
	policy := map[string]any{
		"policy": map[string]any{
			"phases": map[string]any{
				"hot":    map[string]any{"min_age": "0ms", "actions": map[string]any{}},
				"delete": map[string]any{"min_age": strconv.Itoa(cfg.ILM.RetentionDays) + "d", "actions": map[string]any{"delete": map[string]any{}}},
			},
		},
	}
	settings := map[string]any{
		"version": SchemaVersion,
		"template": map[string]any{
			"settings": map[string]any{
				"index": map[string]any{
					"number_of_shards": cfg.Index.Shards,
					"lifecycle": map[string]any{
						"name": p,
						// Counts the policy's ages from the -yyyy.MM.dd suffix
						// of the index name (the bucket's date), not from
						// when the index was created, so backfilled months
						// expire on time.
						"parse_origination_date": true,
					},
				},
			},
		},
	}
	mappings := map[string]any{
		"version":  SchemaVersion,
		"template": map[string]any{"mappings": Mappings()},
	}
	index := map[string]any{
		"index_patterns": []string{p + "-*"},
		"composed_of":    []string{p + "@settings", p + "@mappings"},
		"priority":       200,
		"version":        SchemaVersion,
	}
	specs := []struct {
		kind, name string
		body       map[string]any
		meta       map[string]any // where _meta goes
		desc       string
	}{
		{KindILMPolicy, p, policy, policy["policy"].(map[string]any), "deletes SSPR event indices " + strconv.Itoa(cfg.ILM.RetentionDays) + " days after the date in their name"},
		{KindComponentTemplate, p + "@settings", settings, settings, "settings of SSPR event indices"},
		{KindComponentTemplate, p + "@mappings", mappings, mappings, "ECS mappings of SSPR event documents"},
		{KindIndexTemplate, p, index, index, "SSPR event indices " + p + "-yyyy.MM.dd"},
	}
	var out []Asset
	for _, sp := range specs {
		meta := map[string]any{
			"managed_by":     "sspr-exporter",
			"description":    sp.desc,
			"schema_version": SchemaVersion,
			"content_hash":   "",
		}
		sp.meta["_meta"] = meta
		canon, err := json.Marshal(sp.body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", sp.kind, sp.name, err)
		}
		sum := sha256.Sum256(canon)
		hash := hex.EncodeToString(sum[:8])
		meta["content_hash"] = hash
		body, err := json.MarshalIndent(sp.body, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", sp.kind, sp.name, err)
		}
		out = append(out, Asset{Kind: sp.kind, Name: sp.name, Body: append(body, '\n'), Hash: hash})
	}
	return out, nil
}

// Mappings returns the explicit mappings of every field ecs.Event emits.
// dynamic is false so unknown fields are kept in _source but never mapped,
// and never the cause of a rejection.
func Mappings() map[string]any {
	kw := func() map[string]any { return map[string]any{"type": "keyword", "ignore_above": 1024} }
	kwText := func() map[string]any {
		m := kw()
		m["fields"] = map[string]any{"text": map[string]any{"type": "match_only_text"}}
		return m
	}
	obj := func(props map[string]any) map[string]any { return map[string]any{"properties": props} }
	userProps := func() map[string]any {
		return map[string]any{"id": kw(), "name": kwText(), "full_name": kwText(), "domain": kw()}
	}
	user := userProps()
	user["target"] = obj(userProps())
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": map[string]any{"type": "date"},
			"ecs":        obj(map[string]any{"version": kw()}),
			"event": obj(map[string]any{
				"kind": kw(), "category": kw(), "type": kw(), "action": kw(), "outcome": kw(),
				"id": kw(), "reason": kw(), "provider": kw(), "dataset": kw(),
				// As in ECS: kept in _source for forensics, not searchable.
				"original": map[string]any{"type": "keyword", "index": false, "doc_values": false},
			}),
			"user":       obj(user),
			"related":    obj(map[string]any{"user": kw(), "ip": map[string]any{"type": "ip"}}),
			"source":     obj(map[string]any{"ip": map[string]any{"type": "ip"}}),
			"cloud":      obj(map[string]any{"provider": kw(), "account": obj(map[string]any{"id": kw()})}),
			"user_agent": obj(map[string]any{"original": kwText()}),
			"azure": obj(map[string]any{
				"correlation_id": kw(), "tenant_id": kw(), "resource_id": kw(),
				"auditlogs": obj(map[string]any{
					"category": kw(), "operation_name": kw(), "operation_type": kw(), "operation_version": kw(),
					"result": kw(), "result_reason": kw(), "logged_by_service": kw(),
					// Free-form key/value pairs: flattened so an unknown key
					// can never conflict with a mapping.
					"additional_details": map[string]any{"type": "flattened", "ignore_above": 1024},
					"initiated_by": obj(map[string]any{"app": obj(map[string]any{
						"app_id": kw(), "display_name": kw(), "service_principal_id": kw(), "service_principal_name": kw(),
					})}),
					"target_resources": obj(map[string]any{
						"id": kw(), "display_name": kw(), "type": kw(), "user_principal_name": kw(), "group_type": kw(),
						"modified_properties": obj(map[string]any{"display_name": kw(), "old_value": kw(), "new_value": kw()}),
					}),
				}),
			}),
		},
	}
}

// SetupCommand is what Check tells the user to run.
const SetupCommand = "sspr-exporter setup --config FILE"

// Setup installs the ILM policy, the component templates and the index
// template, each only when missing or different (by _meta.content_hash), so
// a second run changes nothing. It reports whether anything was written.
func Setup(ctx context.Context, cfg Config, logger *slog.Logger) (changed bool, err error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return false, fmt.Errorf("elasticsearch config: %w", errors.Join(errs...))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ad, err := newAdmin(cfg)
	if err != nil {
		return false, err
	}
	defer ad.tr.CloseIdleConnections()
	changed, err = ad.setup(ctx, cfg, logger)
	return changed, redactErr(ad.red, err)
}

func (ad admin) setup(ctx context.Context, cfg Config, logger *slog.Logger) (changed bool, err error) {
	assets, err := Assets(cfg)
	if err != nil {
		return false, err
	}
	for _, a := range assets {
		hash, found, err := ad.installedHash(ctx, a, true)
		if err != nil {
			return changed, err
		}
		if found && hash == a.Hash {
			logger.Debug("elasticsearch setup: up to date", "kind", a.Kind, "name", a.Name)
			continue
		}
		if err := ad.put(ctx, a); err != nil {
			return changed, err
		}
		changed = true
		logger.Info("elasticsearch setup: installed", "kind", a.Kind, "name", a.Name, "replaced", found, "content_hash", a.Hash)
	}
	return changed, nil
}

// Check verifies that the node is reachable and takes the credentials,
// then, unless cfg.SkipSetupCheck, that what Setup installs is in place
// and current. Its error says what is wrong and what to run.
func Check(ctx context.Context, cfg Config) error {
	if errs := cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("elasticsearch config: %w", errors.Join(errs...))
	}
	ad, err := newAdmin(cfg)
	if err != nil {
		return err
	}
	defer ad.tr.CloseIdleConnections()
	return redactErr(ad.red, ad.check(ctx, cfg))
}

func (ad admin) check(ctx context.Context, cfg Config) error {
	if err := ad.ping(ctx); err != nil {
		return err
	}
	if cfg.SkipSetupCheck {
		return nil
	}
	assets, err := Assets(cfg)
	if err != nil {
		return err
	}
	var problems []string
	for _, a := range assets {
		hash, found, err := ad.installedHash(ctx, a, false)
		if err != nil {
			return err
		}
		switch {
		case !found:
			problems = append(problems, fmt.Sprintf("%s %q is missing", label(a.Kind), a.Name))
		case hash != a.Hash:
			problems = append(problems, fmt.Sprintf("%s %q is outdated or changed by hand (content_hash %q, this version installs %q)", label(a.Kind), a.Name, hash, a.Hash))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("elasticsearch setup incomplete: %s; run `%s` as a user with the manage_ilm and manage_index_templates cluster privileges (or apply the files of deploy/elasticsearch by hand)",
			strings.Join(problems, "; "), SetupCommand)
	}
	return nil
}

// ping asks for the node's banner (GET /). Any answer from Elasticsearch
// but 401 proves the node is reachable and takes the credentials: a 403 is
// an authenticated user without the monitor privilege, which a writer
// does not need.
func (ad admin) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return fmt.Errorf("elasticsearch GET /: %w", err)
	}
	res, err := ad.client.Perform(req)
	if err != nil {
		// Also the client's refusal of a 2xx answer without the
		// X-Elastic-Product header: something else answers there.
		return fmt.Errorf("elasticsearch GET /: unreachable or not Elasticsearch: %w", err)
	}
	defer res.Body.Close()
	switch st := res.StatusCode; {
	case st < 300, st == http.StatusForbidden && isElasticsearch(res.Header):
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return nil
	case st == http.StatusUnauthorized:
		return fmt.Errorf("elasticsearch GET /: %s: the credentials are refused; check api_key, username/password or bearer_token",
			describeFailure(st, res.Body, ad.red).Desc)
	default:
		return fmt.Errorf("elasticsearch GET /: %s", describeFailure(st, res.Body, ad.red).Desc)
	}
}

// admin is a client for Setup and Check, with what takes the credentials
// out of its errors.
type admin struct {
	client *es.Client
	tr     *transport
	red    *secret.Redactor
}

func newAdmin(cfg Config) (admin, error) {
	client, tr, err := newClient(cfg)
	if err != nil {
		return admin{}, err
	}
	return admin{client: client, tr: tr, red: redactor(cfg)}, nil
}

func label(kind string) string {
	return strings.ReplaceAll(strings.Replace(kind, "ilm_", "ILM ", 1), "_", " ")
}

func (ad admin) installedHash(ctx context.Context, a Asset, forSetup bool) (hash string, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Path(), nil)
	if err != nil {
		return "", false, fmt.Errorf("elasticsearch get %s %s: %w", label(a.Kind), a.Name, err)
	}
	res, err := ad.client.Perform(req)
	if err != nil {
		return "", false, fmt.Errorf("elasticsearch get %s %s: unreachable: %w", label(a.Kind), a.Name, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		_, _ = io.Copy(io.Discard, res.Body)
		return "", false, nil
	}
	if res.StatusCode != http.StatusOK {
		op := "check"
		if forSetup {
			op = "get"
		}
		return "", false, adminError(op, a, res, ad.red)
	}
	var meta struct {
		Meta struct {
			ContentHash string `json:"content_hash"`
		} `json:"_meta"`
	}
	dec := json.NewDecoder(res.Body)
	switch a.Kind {
	case KindILMPolicy:
		var v map[string]struct {
			Policy json.RawMessage `json:"policy"`
		}
		if err := dec.Decode(&v); err != nil {
			return "", false, fmt.Errorf("elasticsearch get ILM policy %s: %w", a.Name, err)
		}
		p, ok := v[a.Name]
		if !ok {
			return "", false, nil
		}
		_ = json.Unmarshal(p.Policy, &meta)
	case KindComponentTemplate:
		var v struct {
			List []struct {
				Name string          `json:"name"`
				T    json.RawMessage `json:"component_template"`
			} `json:"component_templates"`
		}
		if err := dec.Decode(&v); err != nil {
			return "", false, fmt.Errorf("elasticsearch get component template %s: %w", a.Name, err)
		}
		for _, t := range v.List {
			if t.Name == a.Name {
				_ = json.Unmarshal(t.T, &meta)
				return meta.Meta.ContentHash, true, nil
			}
		}
		return "", false, nil
	default:
		var v struct {
			List []struct {
				Name string          `json:"name"`
				T    json.RawMessage `json:"index_template"`
			} `json:"index_templates"`
		}
		if err := dec.Decode(&v); err != nil {
			return "", false, fmt.Errorf("elasticsearch get index template %s: %w", a.Name, err)
		}
		for _, t := range v.List {
			if t.Name == a.Name {
				_ = json.Unmarshal(t.T, &meta)
				return meta.Meta.ContentHash, true, nil
			}
		}
		return "", false, nil
	}
	return meta.Meta.ContentHash, true, nil
}

func (ad admin) put(ctx context.Context, a Asset) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.Path(), bytes.NewReader(a.Body))
	if err != nil {
		return fmt.Errorf("elasticsearch put %s %s: %w", label(a.Kind), a.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := ad.client.Perform(req)
	if err != nil {
		return fmt.Errorf("elasticsearch put %s %s: unreachable: %w", label(a.Kind), a.Name, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return adminError("put", a, res, ad.red)
	}
	var ack struct {
		Acknowledged bool `json:"acknowledged"`
	}
	if err := json.NewDecoder(res.Body).Decode(&ack); err != nil || !ack.Acknowledged {
		return fmt.Errorf("elasticsearch put %s %s: not acknowledged", label(a.Kind), a.Name)
	}
	return nil
}

func adminError(op string, a Asset, res *http.Response, red *secret.Redactor) error {
	desc := describeFailure(res.StatusCode, res.Body, red).Desc
	hint := ""
	switch res.StatusCode {
	case http.StatusUnauthorized:
		hint = ": check api_key, username/password or bearer_token"
	case http.StatusForbidden:
		if op == "check" {
			hint = ": the user needs the read_ilm and manage_index_templates cluster privileges to check the setup (or set skip_setup_check = true)"
		} else {
			hint = ": setup needs the manage_ilm and manage_index_templates cluster privileges"
		}
	}
	return fmt.Errorf("elasticsearch %s %s %s: %s%s", op, label(a.Kind), a.Name, desc, hint)
}
