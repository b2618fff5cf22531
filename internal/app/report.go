package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
	"github.com/sspr-exporter/sspr-exporter/internal/report"
)

const reportSynopsis = `report NAME [--config FILE | --input FILE...] [--since 30d | --from T --to T]
       [--tenant ID] [--domain D] [--group NAME|ID] [--user UPN] [--outcome success|failure]
       [--format table|csv|json|html|xlsx] [--output FILE]

Reports on the exported events, read from the Elasticsearch or OpenSearch output
of --config, or from ECS NDJSON files written by the file output (--input; no
service needed). NAME is one of resets, failed-resets, admin-resets,
registrations, flows, summary (see docs/reports.md). The period is the last 30
days unless --since or --from/--to say otherwise; times are RFC 3339 or dates
(--to includes that day). Filter flags may be repeated or take comma-separated
values. With --output the report is written atomically to FILE with its
manifest (what it covered, with SHA-256 digests) beside it as FILE.manifest.json.`

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// reportFlags are the command line of report.
type reportFlags struct {
	config, since, from, to, format, output           string
	inputs, tenants, domains, groups, users, outcomes listFlag
}

// defaultReportPeriod is the period of a report without --since or --from.
const defaultReportPeriod = 30 * 24 * time.Hour

// reportOutcomes are the values --outcome takes: event outcomes, and for
// the flow reports the outcomes of flows.
var reportOutcomes = []string{"success", "failure", report.FlowReset, report.FlowAbandoned, report.FlowBlocked, report.FlowFailed}

// Report writes one report on the exported events.
func Report(ctx context.Context, args []string, std Std) error {
	fs := newFlags("report", reportSynopsis, std)
	var f reportFlags
	fs.StringVar(&f.config, "config", "", "read from the Elasticsearch or OpenSearch output of this config (default $SSPR_CONFIG)")
	fs.Var(&f.inputs, "input", "read ECS NDJSON files instead (repeat, or give more FILEs after the flags)")
	fs.StringVar(&f.since, "since", "", "the period ends now and starts this far back (30d, 2w, 12h, 90m)")
	fs.StringVar(&f.from, "from", "", "start of the period (included)")
	fs.StringVar(&f.to, "to", "", "end of the period (excluded; a date includes that day); default now")
	fs.Var(&f.tenants, "tenant", "only this tenant id (cloud.account.id)")
	fs.Var(&f.domains, "domain", "only accounts of this domain (case-insensitive)")
	fs.Var(&f.groups, "group", "only target accounts in this group, by name (case-insensitive) or id; needs [enrich.graph]")
	fs.Var(&f.users, "user", "only this user, by UPN (case-insensitive) or object id")
	fs.Var(&f.outcomes, "outcome", "only this outcome: success or failure (flows and summary also: reset, abandoned, blocked, failed)")
	fs.StringVar(&f.format, "format", "", "table, csv, json, html or xlsx (default: from the --output extension, else table)")
	fs.StringVar(&f.output, "output", "", "write to this file, with FILE.manifest.json beside it (default stdout)")
	scheduled := fs.String("scheduled", "", "run the [[reports]] entry NAME of --config once and deliver it (exit 0 delivered, 1 failed, 2 unknown NAME or config problem)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *scheduled != "" {
		return reportScheduled(ctx, *scheduled, f, fs.args, std)
	}
	if len(fs.args) == 0 {
		return &UsageError{fmt.Errorf("report needs its NAME: one of %s", strings.Join(report.Names(), ", "))}
	}
	name, extra := fs.args[0], fs.args[1:]
	if len(extra) > 0 && len(f.inputs) == 0 {
		return &UsageError{fmt.Errorf("unexpected arguments %q (input files go after --input)", extra)}
	}
	f.inputs = append(f.inputs, extra...)
	now := time.Now().UTC()
	spec, err := reportSpec(name, f, now)
	if err != nil {
		return &UsageError{err}
	}
	if f.config != "" && len(f.inputs) > 0 {
		return &UsageError{errors.New("give either --config (read the search output) or --input (read files), not both")}
	}
	if len(f.inputs) == 0 && configPath(f.config) == "" {
		return &UsageError{eventstore.ErrNoStore}
	}
	cfg, err := loadConfig(f.config, len(f.inputs) > 0)
	if err != nil {
		return err
	}
	r, err := eventstore.Open(cfg, f.inputs)
	if err != nil {
		return &UsageError{err}
	}
	var m report.Manifest
	if f.output == "" {
		m, err = report.Generate(ctx, r, spec, std.Out, now)
	} else {
		m, err = report.WriteFile(ctx, r, spec, f.output, now)
	}
	if errors.Is(err, report.ErrNoGroupData) {
		return &UsageError{fmt.Errorf("--group: %w", err)}
	}
	if err != nil {
		return err
	}
	if f.output != "" {
		fmt.Fprintf(std.Err, "sspr-exporter: wrote %s report, %d rows, to %s (manifest %s.manifest.json)\n", m.Report, m.Rows, f.output, f.output)
	}
	return nil
}

// reportSpec reads the report's name, period, filters and format.
func reportSpec(name string, f reportFlags, now time.Time) (report.Spec, error) {
	q := eventstore.Query{Tenants: f.tenants, Domains: f.domains, Groups: f.groups, Users: f.users, Outcomes: f.outcomes}
	for _, o := range f.outcomes {
		if !slices.Contains(reportOutcomes, o) {
			return report.Spec{}, fmt.Errorf("--outcome: %q is not one of %s", o, strings.Join(reportOutcomes, ", "))
		}
	}
	var err error
	if q.From, q.To, err = reportPeriod(f, now); err != nil {
		return report.Spec{}, err
	}
	format := f.format
	if format == "" {
		format = "table"
		if ext := strings.TrimPrefix(strings.ToLower(extOf(f.output)), "."); slices.Contains(report.Formats, ext) {
			format = ext
		}
	}
	spec := report.Spec{Name: name, Query: q, Format: format}
	return spec, spec.Check()
}

func extOf(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 && !strings.ContainsAny(path[i:], `/\`) {
		return path[i:]
	}
	return ""
}

// reportPeriod is [from, to): --since back from now, or --from (and --to,
// default now), or the last 30 days (up to --to when given).
func reportPeriod(f reportFlags, now time.Time) (from, to time.Time, err error) {
	if f.since != "" && (f.from != "" || f.to != "") {
		return from, to, errors.New("give either --since or --from/--to, not both")
	}
	to = now
	if f.to != "" {
		if to, err = backfill.ParseTime(f.to, true); err != nil {
			return from, to, fmt.Errorf("--to: %w", err)
		}
	}
	switch {
	case f.since != "":
		age, err := backfill.ParseAge(f.since)
		if err != nil {
			return from, to, fmt.Errorf("--since: %w", err)
		}
		from = now.Add(-age)
	case f.from != "":
		if from, err = backfill.ParseTime(f.from, false); err != nil {
			return from, to, fmt.Errorf("--from: %w", err)
		}
	default:
		from = to.Add(-defaultReportPeriod)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("the period %s to %s is empty: --from must be before --to", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}
