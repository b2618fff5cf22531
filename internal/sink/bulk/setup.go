package bulk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// SchemaVersion is bumped whenever the mappings, settings or policy shape
// change; it is stored in each object's _meta and version.
const SchemaVersion = 1

// Asset kinds.
const (
	KindILMPolicy         = "ilm_policy"
	KindISMPolicy         = "ism_policy"
	KindComponentTemplate = "component_template"
	KindIndexTemplate     = "index_template"
)

// Asset is one object a setup installs: a lifecycle policy, a component
// template or the index template, with the exact body it sends.
type Asset struct {
	Kind string
	Name string
	Body []byte // indented JSON, as sent and as shipped in deploy/
	Hash string // the content hash stamped inside Body
}

// Path is the API path the asset is PUT to and read from.
func (a Asset) Path() string {
	switch a.Kind {
	case KindILMPolicy:
		return "/_ilm/policy/" + a.Name
	case KindISMPolicy:
		return "/_plugins/_ism/policies/" + a.Name
	case KindComponentTemplate:
		return "/_component_template/" + a.Name
	default:
		return "/_index_template/" + a.Name
	}
}

// FileName is the asset's file name in deploy/.
func (a Asset) FileName() string {
	return map[string]string{KindILMPolicy: "ilm-policy", KindISMPolicy: "ism-policy", KindComponentTemplate: "component-template", KindIndexTemplate: "index-template"}[a.Kind] +
		"-" + a.Name + ".json"
}

// Label names the asset's kind for messages: "ILM policy", "index template".
func (a Asset) Label() string {
	switch a.Kind {
	case KindILMPolicy:
		return "ILM policy"
	case KindISMPolicy:
		return "ISM policy"
	}
	return strings.ReplaceAll(a.Kind, "_", " ")
}

// ismStamp ends an ISM policy's description: the policy takes no _meta,
// so what identifies the installed content lives there.
const ismStamp = " (managed by sspr-exporter, schema_version %d, content_hash %s)"

var ismHash = regexp.MustCompile(`content_hash ([0-9a-f]+)\)$`)

// NewAsset encodes body, stamped with the managed-by metadata and the hash
// of its content. The stamp goes into _meta of at (a map inside body) or,
// for an ISM policy, at the end of at's description.
func NewAsset(kind, name string, body, at map[string]any, desc string) (Asset, error) {
	stamp := func(hash string) {
		if kind == KindISMPolicy {
			at["description"] = desc + fmt.Sprintf(ismStamp, SchemaVersion, hash)
			return
		}
		at["_meta"] = map[string]any{
			"managed_by":     "sspr-exporter",
			"description":    desc,
			"schema_version": SchemaVersion,
			"content_hash":   hash,
		}
	}
	stamp("")
	canon, err := json.Marshal(body)
	if err != nil {
		return Asset{}, fmt.Errorf("encode %s %s: %w", kind, name, err)
	}
	sum := sha256.Sum256(canon)
	hash := hex.EncodeToString(sum[:8])
	stamp(hash)
	out, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		return Asset{}, fmt.Errorf("encode %s %s: %w", kind, name, err)
	}
	return Asset{Kind: kind, Name: name, Body: append(out, '\n'), Hash: hash}, nil
}

// AdminTexts are the engine's words in setup and check errors.
type AdminTexts struct {
	// Credentials follows a 401: which settings to check.
	Credentials string
	// SetupPrivileges and CheckPrivileges follow a 403 of setup and check.
	SetupPrivileges, CheckPrivileges string
}

// Admin installs and checks assets through an engine's client.
type Admin struct {
	Name   string // the engine's name, starting messages
	Client Client
	Red    *secret.Redactor
	Texts  AdminTexts
}

// Close closes the idle connections of the admin's client.
func (ad Admin) Close() { ad.Client.CloseIdleConnections() }

// Redact takes the credentials out of err's message.
func (ad Admin) Redact(err error) error { return RedactErr(ad.Red, err) }

// installed is what a cluster holds of an asset.
type installed struct {
	found             bool
	hash              string
	seqNo, primaryTrm int64 // an ISM policy's, to update it
}

// Install puts each asset that is missing or differs (by content hash),
// so that a second run changes nothing, and reports whether it wrote
// anything.
func (ad Admin) Install(ctx context.Context, assets []Asset, logger *slog.Logger) (changed bool, err error) {
	for _, a := range assets {
		cur, err := ad.installed(ctx, a, true)
		if err != nil {
			return changed, err
		}
		if cur.found && cur.hash == a.Hash {
			logger.Debug(ad.Name+" setup: up to date", "kind", a.Kind, "name", a.Name)
			continue
		}
		if err := ad.put(ctx, a, cur); err != nil {
			return changed, err
		}
		changed = true
		logger.Info(ad.Name+" setup: installed", "kind", a.Kind, "name", a.Name, "replaced", cur.found, "content_hash", a.Hash)
	}
	return changed, nil
}

// Problems lists the assets missing or different from what this version
// installs, one sentence each.
func (ad Admin) Problems(ctx context.Context, assets []Asset) ([]string, error) {
	var problems []string
	for _, a := range assets {
		cur, err := ad.installed(ctx, a, false)
		if err != nil {
			return nil, err
		}
		switch {
		case !cur.found:
			problems = append(problems, fmt.Sprintf("%s %q is missing", a.Label(), a.Name))
		case cur.hash != a.Hash:
			problems = append(problems, fmt.Sprintf("%s %q is outdated or changed by hand (content_hash %q, this version installs %q)", a.Label(), a.Name, cur.hash, a.Hash))
		}
	}
	return problems, nil
}

// Installed reports whether the cluster holds a and whether what it holds
// is what this version installs.
func (ad Admin) Installed(ctx context.Context, a Asset) (found, current bool, err error) {
	cur, err := ad.installed(ctx, a, false)
	return cur.found, cur.found && cur.hash == a.Hash, err
}

// Get sends a GET of path.
func (ad Admin) Get(ctx context.Context, path string) (*http.Response, error) {
	return ad.Client.Do(ctx, Request{Method: http.MethodGet, Path: path})
}

func (ad Admin) installed(ctx context.Context, a Asset, forSetup bool) (installed, error) {
	res, err := ad.Get(ctx, a.Path())
	if err != nil {
		return installed{}, fmt.Errorf("%s get %s %s: unreachable: %w", ad.Name, a.Label(), a.Name, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		_, _ = io.Copy(io.Discard, res.Body)
		return installed{}, nil
	}
	if res.StatusCode != http.StatusOK {
		op := "check"
		if forSetup {
			op = "get"
		}
		return installed{}, ad.adminError(op, a, res)
	}
	cur, err := readInstalled(a, res.Body)
	if err != nil {
		return installed{}, fmt.Errorf("%s get %s %s: %w", ad.Name, a.Label(), a.Name, err)
	}
	return cur, nil
}

type metaHash struct {
	Meta struct {
		ContentHash string `json:"content_hash"`
	} `json:"_meta"`
}

// readInstalled reads an asset's GET answer, in its kind's shape.
func readInstalled(a Asset, body io.Reader) (installed, error) {
	dec := json.NewDecoder(body)
	var meta metaHash
	switch a.Kind {
	case KindILMPolicy:
		var v map[string]struct {
			Policy json.RawMessage `json:"policy"`
		}
		if err := dec.Decode(&v); err != nil {
			return installed{}, err
		}
		p, ok := v[a.Name]
		if !ok {
			return installed{}, nil
		}
		_ = json.Unmarshal(p.Policy, &meta)
	case KindISMPolicy:
		var v struct {
			SeqNo       int64 `json:"_seq_no"`
			PrimaryTerm int64 `json:"_primary_term"`
			Policy      struct {
				Description string `json:"description"`
			} `json:"policy"`
		}
		if err := dec.Decode(&v); err != nil {
			return installed{}, err
		}
		cur := installed{found: true, seqNo: v.SeqNo, primaryTrm: v.PrimaryTerm}
		if m := ismHash.FindStringSubmatch(v.Policy.Description); m != nil {
			cur.hash = m[1]
		}
		return cur, nil
	default:
		var v struct {
			Components []struct {
				Name string          `json:"name"`
				T    json.RawMessage `json:"component_template"`
			} `json:"component_templates"`
			Indices []struct {
				Name string          `json:"name"`
				T    json.RawMessage `json:"index_template"`
			} `json:"index_templates"`
		}
		if err := dec.Decode(&v); err != nil {
			return installed{}, err
		}
		for _, t := range v.Components {
			if t.Name == a.Name && a.Kind == KindComponentTemplate {
				_ = json.Unmarshal(t.T, &meta)
				return installed{found: true, hash: meta.Meta.ContentHash}, nil
			}
		}
		for _, t := range v.Indices {
			if t.Name == a.Name && a.Kind == KindIndexTemplate {
				_ = json.Unmarshal(t.T, &meta)
				return installed{found: true, hash: meta.Meta.ContentHash}, nil
			}
		}
		return installed{}, nil
	}
	return installed{found: true, hash: meta.Meta.ContentHash}, nil
}

func (ad Admin) put(ctx context.Context, a Asset, cur installed) error {
	path := a.Path()
	if a.Kind == KindISMPolicy && cur.found {
		// ISM replaces a policy only for the version it was read at.
		path += "?if_seq_no=" + strconv.FormatInt(cur.seqNo, 10) + "&if_primary_term=" + strconv.FormatInt(cur.primaryTrm, 10)
	}
	res, err := ad.Client.Do(ctx, Request{Method: http.MethodPut, Path: path, Body: a.Body})
	if err != nil {
		return fmt.Errorf("%s put %s %s: unreachable: %w", ad.Name, a.Label(), a.Name, err)
	}
	defer res.Body.Close()
	if a.Kind == KindISMPolicy {
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusCreated {
			return ad.adminError("put", a, res)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if res.StatusCode != http.StatusOK {
		return ad.adminError("put", a, res)
	}
	var ack struct {
		Acknowledged bool `json:"acknowledged"`
	}
	if err := json.NewDecoder(res.Body).Decode(&ack); err != nil || !ack.Acknowledged {
		return fmt.Errorf("%s put %s %s: not acknowledged", ad.Name, a.Label(), a.Name)
	}
	return nil
}

func (ad Admin) adminError(op string, a Asset, res *http.Response) error {
	desc := DescribeFailure(res.StatusCode, res.Body, ad.Red).Desc
	hint := ""
	switch res.StatusCode {
	case http.StatusUnauthorized:
		hint = ad.Texts.Credentials
	case http.StatusForbidden:
		if op == "check" {
			hint = ad.Texts.CheckPrivileges
		} else {
			hint = ad.Texts.SetupPrivileges
		}
	}
	return fmt.Errorf("%s %s %s %s: %s%s", ad.Name, op, a.Label(), a.Name, desc, hint)
}
