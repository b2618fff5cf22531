package elasticsearch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// SchemaVersion is bumped whenever the mappings, settings or policy shape
// change; it is stored in each object's _meta and version.
const SchemaVersion = bulk.SchemaVersion

// Asset kinds.
const (
	KindILMPolicy         = bulk.KindILMPolicy
	KindComponentTemplate = bulk.KindComponentTemplate
	KindIndexTemplate     = bulk.KindIndexTemplate
)

// Asset is one object Setup installs: an ILM policy, a component template
// or the index template, with the exact body it sends.
type Asset = bulk.Asset

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
		a, err := bulk.NewAsset(sp.kind, sp.name, sp.body, sp.meta, sp.desc)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Mappings returns the explicit mappings of every field ecs.Event emits.
// dynamic is false so unknown fields are kept in _source but never mapped,
// and never the cause of a rejection.
func Mappings() map[string]any {
	// Free-form key/value pairs: flattened so an unknown key can never
	// conflict with a mapping.
	return bulk.Mappings(map[string]any{"type": "flattened", "ignore_above": 1024})
}

// SetupCommand is what Check tells the user to run.
const SetupCommand = "sspr-exporter setup --config FILE"

// Setup installs the ILM policy, the component templates and the index
// template, each only when missing or different (by _meta.content_hash), so
// a second run changes nothing. It reports whether anything was written.
func Setup(ctx context.Context, cfg Config, logger *slog.Logger) (changed bool, err error) {
	assets, err := Assets(cfg)
	if err != nil {
		return false, err
	}
	return setupWith(ctx, cfg, logger, assets)
}

// setupWith installs assets, which Setup takes from Assets.
func setupWith(ctx context.Context, cfg Config, logger *slog.Logger, assets []Asset) (changed bool, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ad, err := newAdmin(cfg)
	if err != nil {
		return false, err
	}
	defer ad.Close()
	changed, err = ad.Install(ctx, assets, logger)
	return changed, ad.Redact(err)
}

// Check verifies that the node is reachable and takes the credentials,
// then, unless cfg.SkipSetupCheck, that what Setup installs is in place
// and current. Its error says what is wrong and what to run.
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
	problems, err := ad.Problems(ctx, assets)
	if err != nil {
		return err
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
func ping(ctx context.Context, ad bulk.Admin) error {
	res, err := ad.Get(ctx, "/")
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
			bulk.DescribeFailure(st, res.Body, ad.Red).Desc)
	default:
		return fmt.Errorf("elasticsearch GET /: %s", bulk.DescribeFailure(st, res.Body, ad.Red).Desc)
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
		Credentials:     ": check api_key, username/password or bearer_token",
		SetupPrivileges: ": setup needs the manage_ilm and manage_index_templates cluster privileges",
		CheckPrivileges: ": the user needs the read_ilm and manage_index_templates cluster privileges to check the setup (or set skip_setup_check = true)",
	}}, nil
}
