package opensearch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// SetupCommand is what Check tells the user to run.
const SetupCommand = "sspr-exporter setup --config FILE"

// Asset is one object Setup installs: the ISM policy, a component
// template or the index template, with the exact body it sends.
type Asset = bulk.Asset

// ismProbe is the path whose answer tells whether the ISM plugin runs.
const ismProbe = "/_plugins/_ism/policies"

// Assets returns what Setup installs for cfg, in installation order: the
// ISM policy first (Setup leaves it out where ISM does not run), then the
// templates.
func Assets(cfg Config) ([]Asset, error) {
	p := cfg.Index.Prefix
	days := strconv.Itoa(cfg.ISM.RetentionDays)
	inner := map[string]any{
		"default_state": "hot",
		"states": []any{
			map[string]any{"name": "hot", "actions": []any{},
				"transitions": []any{map[string]any{"state_name": "delete", "conditions": map[string]any{"min_index_age": days + "d"}}}},
			map[string]any{"name": "delete", "actions": []any{map[string]any{"delete": map[string]any{}}}, "transitions": []any{}},
		},
		// Attaches the policy to every index created after it.
		"ism_template": []any{map[string]any{"index_patterns": []string{p + "-*"}, "priority": 200}},
	}
	policy := map[string]any{"policy": inner}
	settings := map[string]any{
		"version": bulk.SchemaVersion,
		"template": map[string]any{
			"settings": map[string]any{"index": map[string]any{"number_of_shards": cfg.Index.Shards}},
		},
	}
	mappings := map[string]any{
		"version":  bulk.SchemaVersion,
		"template": map[string]any{"mappings": Mappings()},
	}
	index := map[string]any{
		"index_patterns": []string{p + "-*"},
		"composed_of":    []string{p + "@settings", p + "@mappings"},
		"priority":       200,
		"version":        bulk.SchemaVersion,
	}
	specs := []struct {
		kind, name string
		body, at   map[string]any
		desc       string
	}{
		{bulk.KindISMPolicy, p, policy, inner, "deletes SSPR event indices " + days + " days after their creation"},
		{bulk.KindComponentTemplate, p + "@settings", settings, settings, "settings of SSPR event indices"},
		{bulk.KindComponentTemplate, p + "@mappings", mappings, mappings, "ECS mappings of SSPR event documents"},
		{bulk.KindIndexTemplate, p, index, index, "SSPR event indices " + p + "-yyyy.MM.dd"},
	}
	var out []Asset
	for _, sp := range specs {
		a, err := bulk.NewAsset(sp.kind, sp.name, sp.body, sp.at, sp.desc)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Mappings returns the explicit mappings of every field ecs.Event emits,
// the free-form maps as flat_object (OpenSearch's type for objects of any
// keys: an unknown key can never conflict with a mapping).
func Mappings() map[string]any { return bulk.Mappings(map[string]any{"type": "flat_object"}) }

// Result is what Setup did.
type Result struct {
	// Changed reports whether anything was written.
	Changed bool
	// NoISM says why the ISM policy was not installed ("" when it was, or
	// was up to date): the ISM plugin does not answer.
	NoISM string
}

// Setup installs the component templates, the index template and, where
// the ISM plugin answers, the ISM policy, each only when missing or
// different (by content hash), so a second run changes nothing. With ISM,
// it also puts the indices that exist already under the policy, and moves
// the managed ones to a replaced policy, whose new retention ISM would
// otherwise apply to new indices only.
func Setup(ctx context.Context, cfg Config, logger *slog.Logger) (Result, error) {
	assets, err := Assets(cfg)
	if err != nil {
		return Result{}, err
	}
	return setupWith(ctx, cfg, logger, assets)
}

// setupWith installs assets, which Setup takes from Assets.
func setupWith(ctx context.Context, cfg Config, logger *slog.Logger, assets []Asset) (Result, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ad, err := newAdmin(cfg)
	if err != nil {
		return Result{}, err
	}
	defer ad.Close()
	res, err := setup(ctx, ad, cfg, logger, assets)
	return res, ad.Redact(err)
}

func setup(ctx context.Context, ad bulk.Admin, cfg Config, logger *slog.Logger, assets []Asset) (Result, error) {
	var res Result
	noISM, err := probeISM(ctx, ad)
	if err != nil {
		return res, err
	}
	policy, templates := split(assets)
	if noISM != "" || policy == nil {
		res.NoISM = noISM
		res.Changed, err = ad.Install(ctx, templates, logger)
		return res, err
	}
	// The policy first, as its ism_template must exist before the indices
	// the templates make.
	found, current, err := ad.Installed(ctx, *policy)
	if err != nil {
		return res, err
	}
	if res.Changed, err = ad.Install(ctx, append([]Asset{*policy}, templates...), logger); err != nil {
		return res, err
	}
	pattern := cfg.Index.Prefix + "-*"
	if err := ismIndices(ctx, ad, "add", pattern, policy.Name, logger); err != nil {
		return res, err
	}
	if found && !current {
		if err := ismIndices(ctx, ad, "change_policy", pattern, policy.Name, logger); err != nil {
			return res, err
		}
	}
	return res, nil
}

// split separates the ISM policy from the templates.
func split(assets []Asset) (policy *Asset, templates []Asset) {
	for i := range assets {
		if assets[i].Kind == bulk.KindISMPolicy {
			policy = &assets[i]
			continue
		}
		templates = append(templates, assets[i])
	}
	return policy, templates
}

// probeISM returns "" when the ISM plugin answers, or says why not. Only
// an answer that the plugin is absent (no such path) is not an error.
func probeISM(ctx context.Context, ad bulk.Admin) (string, error) {
	res, err := ad.Get(ctx, ismProbe+"?size=1")
	if err != nil {
		return "", fmt.Errorf("opensearch get ISM policies: unreachable: %w", err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		_, _ = io.Copy(io.Discard, res.Body)
		return "", nil
	case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
		return "the ISM plugin does not answer (GET " + ismProbe + ": " + bulk.DescribeFailure(res.StatusCode, res.Body, ad.Red).Desc + ")", nil
	case http.StatusUnauthorized:
		return "", fmt.Errorf("opensearch get ISM policies: %s%s", bulk.DescribeFailure(res.StatusCode, res.Body, ad.Red).Desc, ad.Texts.Credentials)
	default:
		return "", fmt.Errorf("opensearch get ISM policies: %s%s", bulk.DescribeFailure(res.StatusCode, res.Body, ad.Red).Desc, privilegeHint(res.StatusCode, ad.Texts.SetupPrivileges))
	}
}

func privilegeHint(status int, hint string) string {
	if status == http.StatusForbidden {
		return hint
	}
	return ""
}

// ismIndices runs an ISM index API (add, change_policy) on the indices
// of pattern with the policy. Indices it does not apply to (already
// managed, for add; not managed, for change_policy) are no failure.
func ismIndices(ctx context.Context, ad bulk.Admin, api, pattern, policyID string, logger *slog.Logger) error {
	body, _ := json.Marshal(map[string]string{"policy_id": policyID})
	res, err := ad.Client.Do(ctx, bulk.Request{Method: http.MethodPost, Path: "/_plugins/_ism/" + api + "/" + url.PathEscape(pattern), Body: body})
	if err != nil {
		return fmt.Errorf("opensearch ISM %s %s: unreachable: %w", api, pattern, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("opensearch ISM %s %s: %s%s", api, pattern, bulk.DescribeFailure(res.StatusCode, res.Body, ad.Red).Desc, privilegeHint(res.StatusCode, ad.Texts.SetupPrivileges))
	}
	var out struct {
		Updated int `json:"updated_indices"`
	}
	_ = json.NewDecoder(res.Body).Decode(&out)
	if out.Updated > 0 {
		logger.Info("opensearch setup: ISM policy applied to existing indices", "api", api, "indices", out.Updated, "policy", policyID)
	}
	return nil
}

// Check verifies that the node is reachable, is OpenSearch and takes the
// credentials, then, unless cfg.SkipSetupCheck, that what Setup installs
// is in place and current (the ISM policy only where ISM runs). Its error
// says what is wrong and what to run.
func Check(ctx context.Context, cfg Config) error {
	assets, err := Assets(cfg)
	if err != nil {
		return err
	}
	return checkWith(ctx, cfg, assets)
}

// checkWith checks for assets, which Check takes from Assets.
func checkWith(ctx context.Context, cfg Config, assets []Asset) error {
	ad, err := newAdmin(cfg)
	if err != nil {
		return err
	}
	defer ad.Close()
	return ad.Redact(check(ctx, ad, cfg, assets))
}

func check(ctx context.Context, ad bulk.Admin, cfg Config, assets []Asset) error {
	if err := ping(ctx, ad); err != nil {
		return err
	}
	if cfg.SkipSetupCheck {
		return nil
	}
	noISM, err := probeISM(ctx, ad)
	if err != nil {
		return err
	}
	policy, templates := split(assets)
	if noISM == "" && policy != nil {
		templates = append([]Asset{*policy}, templates...)
	}
	problems, err := ad.Problems(ctx, templates)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("opensearch setup incomplete: %s; run `%s` as a user allowed to manage index templates and ISM policies (or apply the files of deploy/opensearch by hand)",
			strings.Join(problems, "; "), SetupCommand)
	}
	return nil
}

// ping asks for the node's banner (GET /). Any answer from OpenSearch but
// 401 proves the node is reachable and takes the credentials: a 403 is an
// authenticated user without the cluster monitor permission, which a
// writer does not need.
func ping(ctx context.Context, ad bulk.Admin) error {
	res, err := ad.Get(ctx, "/")
	if err != nil {
		return fmt.Errorf("opensearch GET /: unreachable: %w", err)
	}
	defer res.Body.Close()
	if res.Header.Get("X-Elastic-Product") == "Elasticsearch" {
		return fmt.Errorf("opensearch GET /: the node is Elasticsearch: configure [output.elasticsearch] for it")
	}
	switch st := res.StatusCode; {
	case st < 300:
		var info struct {
			Version struct {
				Distribution string `json:"distribution"`
			} `json:"version"`
		}
		err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&info)
		if err != nil || info.Version.Distribution != "opensearch" {
			return fmt.Errorf("opensearch GET /: the answer is not OpenSearch's banner (version.distribution %q)", info.Version.Distribution)
		}
		return nil
	case st == http.StatusForbidden:
		if f := bulk.DescribeFailure(st, res.Body, ad.Red); !f.Envelope {
			return fmt.Errorf("opensearch GET /: %s", f.Desc)
		}
		return nil
	case st == http.StatusUnauthorized:
		return fmt.Errorf("opensearch GET /: %s: the credentials are refused; check username/password or bearer_token",
			bulk.DescribeFailure(st, res.Body, ad.Red).Desc)
	default:
		return fmt.Errorf("opensearch GET /: %s", bulk.DescribeFailure(st, res.Body, ad.Red).Desc)
	}
}

// newAdmin returns the client of Setup and Check, with what takes the
// credentials out of its errors, for a valid cfg.
func newAdmin(cfg Config) (bulk.Admin, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return bulk.Admin{}, invalid(errs)
	}
	c, err := newClient(cfg)
	if err != nil {
		return bulk.Admin{}, err
	}
	return bulk.Admin{Name: Name, Client: c, Red: Redactor(cfg), Texts: bulk.AdminTexts{
		Credentials:     ": check username/password or bearer_token",
		SetupPrivileges: ": setup needs the cluster permissions cluster_manage_index_templates and cluster:admin/opendistro/ism/* (see docs/opensearch.md, Permissions)",
		CheckPrivileges: ": the user needs to read index templates and ISM policies to check the setup (or set skip_setup_check = true)",
	}}, nil
}
