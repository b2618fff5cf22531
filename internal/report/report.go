// Package report turns the ECS documents of an event store into the audit
// reports of the report command: resets, failed resets, admin resets,
// registrations, flows and a summary, in table, CSV, JSON, HTML or XLSX,
// each with a manifest that says what it covered.
package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
)

// Spec is one report to produce.
type Spec struct {
	Name   string           // resets, failed-resets, admin-resets, registrations, flows, summary
	Query  eventstore.Query // filters and the resolved period [From, To)
	Format string           // table, csv, json, html, xlsx
}

// Formats are the output formats, the first the default.
var Formats = []string{"table", "csv", "json", "html", "xlsx"}

// Names lists the reports in the order the usage text gives them.
func Names() []string {
	names := make([]string, len(definitions))
	for i, d := range definitions {
		names[i] = d.name
	}
	return names
}

// Manifest says what a report covered, for an auditor: written beside
// every report file as FILE.manifest.json.
type Manifest struct {
	Report      string            `json:"report"`
	Format      string            `json:"format"`
	Filters     Filters           `json:"filters"`
	Period      Period            `json:"period"`
	Source      eventstore.Source `json:"source"`
	Rows        int               `json:"rows"`
	GeneratedAt string            `json:"generated_at"`
	File        string            `json:"file,omitempty"`
	SHA256      string            `json:"sha256,omitempty"`
}

// Filters are the query's conditions besides the period; the report's own
// choice of event.action values is listed under Actions.
type Filters struct {
	Tenants  []string `json:"tenants,omitempty"`
	Domains  []string `json:"domains,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Users    []string `json:"users,omitempty"`
	Outcomes []string `json:"outcomes,omitempty"`
	Actions  []string `json:"actions"`
}

// Period is the half-open range [From, To) of @timestamp, RFC 3339 UTC;
// empty is open.
type Period struct {
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// ErrNoGroupData is returned for a --group filter over documents that
// carry no group membership.
var ErrNoGroupData = errors.New("the documents carry no group membership (user.target.group.id/name), so --group cannot select any: " +
	"turn on Graph enrichment in the exporter's config ([enrich.graph] enabled = true, with tenant_id and client_id/client_secret " +
	"or the default Azure credential; the application needs GroupMember.Read.All and RoleManagement.Read.Directory), " +
	"then report on documents exported after that")

// Check reports whether spec names a known report and format.
func (s Spec) Check() error {
	if lookup(s.Name) == nil {
		return fmt.Errorf("unknown report %q (one of %s)", s.Name, strings.Join(Names(), ", "))
	}
	if !slices.Contains(Formats, s.Format) {
		return fmt.Errorf("unknown format %q (one of %s)", s.Format, strings.Join(Formats, ", "))
	}
	if !s.Query.From.IsZero() && !s.Query.To.IsZero() && !s.Query.From.Before(s.Query.To) {
		return fmt.Errorf("the period %s to %s is empty", stamp(s.Query.From), stamp(s.Query.To))
	}
	return nil
}

// Generate writes the report to w, returns its manifest (File and SHA-256 of the file empty).
func Generate(ctx context.Context, r eventstore.Reader, spec Spec, w io.Writer, now time.Time) (Manifest, error) {
	if err := spec.Check(); err != nil {
		return Manifest{}, err
	}
	def := lookup(spec.Name)
	q := def.query(spec.Query)
	if len(q.Groups) > 0 {
		if err := checkGroupData(ctx, r, q); err != nil {
			return Manifest{}, err
		}
	}
	m := Manifest{
		Report:      spec.Name,
		Format:      spec.Format,
		Filters:     filtersOf(spec.Query, q.Actions),
		Period:      Period{From: stamp(q.From), To: stamp(q.To)},
		Source:      r.Describe(),
		GeneratedAt: now.UTC().Format(time.RFC3339),
	}
	out := newWriter(spec.Format, w)
	h := header{manifest: &m, columns: def.columns, title: def.title}
	if err := out.begin(h); err != nil {
		return m, fmt.Errorf("report %s: %w", spec.Name, err)
	}
	err := def.run(ctx, r, q, spec.Query.Outcomes, func(row *Row) error {
		m.Rows++
		return out.row(row)
	})
	if err != nil {
		return m, fmt.Errorf("report %s: %w", spec.Name, err)
	}
	if err := out.end(m.Rows); err != nil {
		return m, fmt.Errorf("report %s: %w", spec.Name, err)
	}
	return m, nil
}

// WriteFile writes the report atomically to path and its manifest to path+".manifest.json".
func WriteFile(ctx context.Context, r eventstore.Reader, spec Spec, path string, now time.Time) (Manifest, error) {
	h := sha256.New()
	var m Manifest
	err := writeAtomic(path, func(f io.Writer) error {
		var err error
		m, err = Generate(ctx, r, spec, io.MultiWriter(f, h), now)
		return err
	})
	if err != nil {
		return m, err
	}
	m.File = path
	m.SHA256 = hex.EncodeToString(h.Sum(nil))
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	b = append(b, '\n')
	if err := writeAtomic(path+".manifest.json", func(f io.Writer) error { _, err := f.Write(b); return err }); err != nil {
		return m, err
	}
	return m, nil
}

// writeAtomic writes a temporary file beside path and renames it over
// path once complete, so that a reader never sees half a report.
func writeAtomic(path string, fill func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("report file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("report file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report file %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return fmt.Errorf("report file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report file: %w", err)
	}
	return nil
}

// errFound stops a scan at the first document that answers a question.
var errFound = errors.New("found")

// checkGroupData returns ErrNoGroupData when no document the query would
// select without its group condition has group data (and some document
// is there at all: an empty period is an empty report, not an error).
func checkGroupData(ctx context.Context, r eventstore.Reader, q eventstore.Query) error {
	q.Groups = nil
	any := false
	err := r.Scan(ctx, q, func(e *ecs.Event) error {
		any = true
		if len(e.User.Target.Group.ID) > 0 || len(e.User.Target.Group.Name) > 0 {
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return nil
	case err != nil:
		return err
	case any:
		return ErrNoGroupData
	}
	return nil
}

func filtersOf(q eventstore.Query, actions []string) Filters {
	return Filters{Tenants: q.Tenants, Domains: q.Domains, Groups: q.Groups, Users: q.Users, Outcomes: q.Outcomes, Actions: actions}
}

// stamp is t in RFC 3339 UTC, or "" for a zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
