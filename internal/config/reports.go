package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sspr-exporter/sspr-exporter/internal/report/deliver"
)

// Reports is the [[reports]] array: reports that run renders on a
// schedule and delivers, each also runnable once with
// "sspr-exporter report --scheduled NAME".
type Reports []Report

// Report is one [[reports]] entry. An element starts from zero values, so
// the defaults are applied where the entry is used (WithDefaults).
type Report struct {
	Name   string `toml:"name"`   // unique; lowercase letters, digits and '-'
	Report string `toml:"report"` // resets, failed-resets, admin-resets, registrations, flows, summary
	// The filters; empty selects everything, values within one are or-ed.
	Tenant  []string `toml:"tenant"`
	Domain  []string `toml:"domain"`
	Group   []string `toml:"group"`
	User    []string `toml:"user"`
	Outcome []string `toml:"outcome"`
	// Period is how far back the report reaches from its run time
	// (truncated to the minute): "7d", "24h", "90m", "2w".
	Period string `toml:"period"`
	Format string `toml:"format"` // table, csv (default), json, html, xlsx
	// Schedule is a 5-field cron expression in UTC, or @hourly, @daily,
	// @weekly, @monthly, @every 6h...
	Schedule string `toml:"schedule"`
	// FileName is the report's file name: {name}, {report}, {date}
	// (YYYY-MM-DD), {time} (HHMM), {ext}; the manifest is the same name
	// with ".manifest.json" added.
	FileName string `toml:"file_name"`
	// The destination: exactly one of dir, [reports.azblob] and
	// [reports.email].
	Dir    string              `toml:"dir"`
	Azblob deliver.BlobConfig  `toml:"azblob"`
	Email  deliver.EmailConfig `toml:"email"`
}

// ReportNames are the reports an entry can name (the report package's).
var ReportNames = []string{"resets", "failed-resets", "admin-resets", "registrations", "flows", "summary"}

// ReportFormats are the formats an entry can name (the report package's).
var ReportFormats = []string{"table", "csv", "json", "html", "xlsx"}

// Defaults of a [[reports]] entry.
const (
	DefaultReportFormat   = "csv"
	DefaultReportFileName = "{name}-{date}.{ext}"
)

// ReportOutcomes are the values an outcome filter takes: event outcomes,
// and for the flows and summary reports the outcomes of flows (the report
// package's).
var ReportOutcomes = []string{"success", "failure", "reset", "abandoned", "blocked", "failed"}

var (
	reportNameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	periodRE     = regexp.MustCompile(`^([0-9]+)(w|d|h|m)$`)
	placeholder  = regexp.MustCompile(`\{[^}]*\}`)
)

// reportPlaceholders are what FileName may hold.
var reportPlaceholders = []string{"{name}", "{report}", "{date}", "{time}", "{ext}"}

// Find returns the entry named name.
func (rs Reports) Find(name string) (Report, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return Report{}, false
}

// Validate checks every entry; messages start with the entry's index
// ("[1].email.to: ...") for the walk to prefix with "reports".
func (rs Reports) Validate() []error {
	var errs []error
	seen := map[string]int{}
	for i, r := range rs {
		p := fmt.Sprintf("[%d]", i)
		if j, dup := seen[r.Name]; dup && r.Name != "" {
			errs = append(errs, fmt.Errorf("%s.name: duplicate of reports[%d].name %q", p, j, r.Name))
		} else {
			seen[r.Name] = i
		}
		for _, err := range r.Validate() {
			errs = append(errs, fmt.Errorf("%s.%w", p, err))
		}
	}
	return errs
}

// WithDefaults returns r with its unset keys at their defaults.
func (r Report) WithDefaults() Report {
	if r.Format == "" {
		r.Format = DefaultReportFormat
	}
	if r.FileName == "" {
		r.FileName = DefaultReportFileName
	}
	if r.Email.IsSet() {
		r.Email = r.Email.WithDefaults()
	}
	return r
}

// Validate checks one entry.
func (r Report) Validate() []error {
	r = r.WithDefaults()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !reportNameRE.MatchString(r.Name) {
		add("name: must be lowercase letters and digits in words joined by '-' (got %q)", r.Name)
	}
	if !slices.Contains(ReportNames, r.Report) {
		add("report: must be one of %s (got %q)", strings.Join(ReportNames, ", "), r.Report)
	}
	for i, o := range r.Outcome {
		if !slices.Contains(ReportOutcomes, o) {
			add("outcome[%d]: must be one of %s (got %q)", i, strings.Join(ReportOutcomes, ", "), o)
		}
	}
	for key, list := range map[string][]string{"tenant": r.Tenant, "domain": r.Domain, "group": r.Group, "user": r.User} {
		for i, v := range list {
			if strings.TrimSpace(v) == "" {
				add("%s[%d]: must not be empty", key, i)
			}
		}
	}
	if r.Period == "" {
		add(`period: must be set, e.g. "7d" or "24h"`)
	} else if _, err := ParsePeriod(r.Period); err != nil {
		add("period: %v", err)
	}
	if !slices.Contains(ReportFormats, r.Format) {
		add("format: must be one of %s (got %q)", strings.Join(ReportFormats, ", "), r.Format)
	}
	if r.Schedule == "" {
		add(`schedule: must be set, e.g. "0 6 * * 1" or "@daily"`)
	} else if _, err := ParseSchedule(r.Schedule); err != nil {
		add("schedule: %v", err)
	}
	for _, ph := range placeholder.FindAllString(r.FileName, -1) {
		if !slices.Contains(reportPlaceholders, ph) {
			add("file_name: unknown placeholder %s (known: %s)", ph, strings.Join(reportPlaceholders, " "))
		}
	}
	if strings.ContainsAny(r.FileName, `/\`) || strings.HasPrefix(r.FileName, ".") {
		add("file_name: must be a file name, without '/' and not starting with '.' (got %q)", r.FileName)
	}
	errs = append(errs, r.validateDestination()...)
	return errs
}

func (r Report) validateDestination() []error {
	var set []string
	if r.Dir != "" {
		set = append(set, "dir")
	}
	if r.Azblob.IsSet() {
		set = append(set, "azblob")
	}
	if r.Email.IsSet() {
		set = append(set, "email")
	}
	switch len(set) {
	case 0:
		return []error{errors.New("dir: set the destination: dir, [reports.azblob] or [reports.email]")}
	case 1:
	default:
		return []error{fmt.Errorf("%s: set exactly one destination (dir, azblob or email), not %s", set[1], strings.Join(set, " and "))}
	}
	switch set[0] {
	case "azblob":
		return prefixAll("azblob", r.Azblob.Validate())
	case "email":
		return prefixAll("email", r.Email.Validate())
	}
	return nil
}

// ParsePeriod reads a relative period: a whole number of weeks, days,
// hours or minutes ("7d", "24h"), or a Go duration ("1h30m").
func ParsePeriod(s string) (time.Duration, error) {
	var d time.Duration
	if m := periodRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is too long", s)
		}
		unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute}[m[2]]
		d = time.Duration(n) * unit
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf(`%q is not a period like "7d", "24h" or "90m"`, s)
		}
	}
	if d < time.Minute {
		return 0, fmt.Errorf("%q is shorter than a minute", s)
	}
	if d > 5*366*24*time.Hour {
		return 0, fmt.Errorf("%q is longer than five years", s)
	}
	return d, nil
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule reads a schedule: 5 cron fields (minute hour day-of-month
// month day-of-week) or a descriptor (@daily, @every 1h). Schedules run in
// UTC; a time zone prefix is refused.
func ParseSchedule(s string) (cron.Schedule, error) {
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return nil, fmt.Errorf("%q: schedules run in UTC; remove the time zone", s)
	}
	sched, err := cronParser.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", s, err)
	}
	return sched, nil
}

// Window returns the period the entry covers when run at now: it ends at
// now truncated to the minute, in UTC.
func (r Report) Window(now time.Time) (from, to time.Time, err error) {
	d, err := ParsePeriod(r.Period)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	to = now.UTC().Truncate(time.Minute)
	return to.Add(-d), to, nil
}

// Ext is the file extension of a report format.
func Ext(format string) string {
	if format == "table" {
		return "txt"
	}
	return format
}

// FileNameAt expands the entry's file name for a run whose period ends at
// to.
func (r Report) FileNameAt(to time.Time) string {
	r = r.WithDefaults()
	to = to.UTC()
	return strings.NewReplacer(
		"{name}", r.Name, "{report}", r.Report, "{date}", to.Format(time.DateOnly),
		"{time}", to.Format("1504"), "{ext}", Ext(r.Format),
	).Replace(r.FileName)
}
