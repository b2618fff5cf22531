// Package settings holds the detection rules' switches and thresholds:
// the [detect.rules.<id>] tables of the configuration, with their defaults
// and validation. It imports nothing of the exporter, so the configuration
// can hold it while the engine reads the event store.
package settings

import (
	"fmt"
	"time"
)

// Config holds every rule's switch and thresholds: the [detect.rules.<id>]
// tables of the configuration.
type Config struct {
	Rules Rules `toml:"rules"`
}

// Rules has one table per rule, named by the rule id.
type Rules struct {
	FailedAttempts        WindowRule     `toml:"sspr-failed-attempts"`
	SprayIP               WindowRule     `toml:"sspr-spray-ip"`
	NewCountry            HistoryRule    `toml:"sspr-new-country"`
	NewASN                HistoryRule    `toml:"sspr-new-asn"`
	SurgeDomain           SurgeRule      `toml:"sspr-surge-domain"`
	SurgeGroup            SurgeRule      `toml:"sspr-surge-group"`
	ResetThenSecInfo      SequenceRule   `toml:"sspr-reset-then-secinfo"`
	AdminSecInfoThenReset SequenceRule   `toml:"sspr-admin-secinfo-then-reset"`
	AdminMassReset        WindowRule     `toml:"sspr-admin-mass-reset"`
	PrivilegedReset       PrivilegedRule `toml:"sspr-privileged-reset"`
}

// WindowRule is a count over tumbling windows aligned to the UTC epoch.
type WindowRule struct {
	Enabled   bool          `toml:"enabled"`
	Window    time.Duration `toml:"window"`
	Threshold int           `toml:"threshold"` // alert when the count reaches it
}

// HistoryRule compares an event with the same user's earlier events.
type HistoryRule struct {
	Enabled bool          `toml:"enabled"`
	History time.Duration `toml:"history"` // how far back earlier events count
}

// SurgeRule compares hourly and daily bucket counts with their baseline.
type SurgeRule struct {
	Enabled     bool          `toml:"enabled"`
	Baseline    time.Duration `toml:"baseline"`     // whole days before each bucket
	HourlyFloor int           `toml:"hourly_floor"` // minimum count of a 1h bucket
	DailyFloor  int           `toml:"daily_floor"`  // minimum count of a 1d bucket
	Ratio       float64       `toml:"ratio"`        // count >= ratio x baseline mean
	Z           float64       `toml:"z"`            // (count-mean)/max(stddev,1) >= z
}

// SequenceRule is one event followed by another of the same user.
type SequenceRule struct {
	Enabled bool          `toml:"enabled"`
	Within  time.Duration `toml:"within"` // the longest gap between the two events
}

// PrivilegedRule names the directory roles that make an account privileged.
type PrivilegedRule struct {
	Enabled bool     `toml:"enabled"`
	Roles   []string `toml:"roles"` // matched case-insensitively
}

// DefaultRoles are the directory roles sspr-privileged-reset watches by default.
var DefaultRoles = []string{
	"Global Administrator", "Privileged Role Administrator", "Privileged Authentication Administrator",
	"Security Administrator", "Exchange Administrator", "SharePoint Administrator", "User Administrator",
	"Authentication Administrator", "Helpdesk Administrator", "Application Administrator",
	"Cloud Application Administrator", "Conditional Access Administrator", "Billing Administrator",
}

// Default enables every rule with the thresholds of the rule table.
func Default() Config {
	surge := SurgeRule{Enabled: true, Baseline: 28 * Day, HourlyFloor: 10, DailyFloor: 30, Ratio: 3, Z: 3}
	return Config{Rules: Rules{
		FailedAttempts:        WindowRule{Enabled: true, Window: time.Hour, Threshold: 5},
		SprayIP:               WindowRule{Enabled: true, Window: time.Hour, Threshold: 5},
		NewCountry:            HistoryRule{Enabled: true, History: 90 * Day},
		NewASN:                HistoryRule{Enabled: true, History: 90 * Day},
		SurgeDomain:           surge,
		SurgeGroup:            surge,
		ResetThenSecInfo:      SequenceRule{Enabled: true, Within: time.Hour},
		AdminSecInfoThenReset: SequenceRule{Enabled: true, Within: time.Hour},
		AdminMassReset:        WindowRule{Enabled: true, Window: time.Hour, Threshold: 10},
		PrivilegedReset:       PrivilegedRule{Enabled: true, Roles: append([]string(nil), DefaultRoles...)},
	}}
}

// Day is 24 hours: windows of a day start at 00:00 UTC.
const Day = 24 * time.Hour

// Validate returns every problem, each starting with its key below the
// section (rules.sspr-spray-ip.threshold).
func (c Config) Validate() []error {
	var errs []error
	add := func(id, key, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("rules.%s.%s: "+msg, append([]any{id, key}, args...)...))
	}
	window := func(id string, r WindowRule) {
		if r.Window < time.Minute {
			add(id, "window", "must be at least 1m (got %s)", r.Window)
		}
		if r.Threshold < 1 {
			add(id, "threshold", "must be at least 1 (got %d)", r.Threshold)
		}
	}
	history := func(id string, r HistoryRule) {
		if r.History < time.Hour {
			add(id, "history", "must be at least 1h (got %s)", r.History)
		}
	}
	surge := func(id string, r SurgeRule) {
		if r.Baseline < Day || r.Baseline%Day != 0 {
			add(id, "baseline", "must be a whole number of days, at least 24h (got %s)", r.Baseline)
		}
		if r.HourlyFloor < 1 {
			add(id, "hourly_floor", "must be at least 1 (got %d)", r.HourlyFloor)
		}
		if r.DailyFloor < 1 {
			add(id, "daily_floor", "must be at least 1 (got %d)", r.DailyFloor)
		}
		if !(r.Ratio > 0) {
			add(id, "ratio", "must be positive (got %g)", r.Ratio)
		}
		if !(r.Z >= 0) {
			add(id, "z", "must not be negative (got %g)", r.Z)
		}
	}
	sequence := func(id string, r SequenceRule) {
		if r.Within <= 0 {
			add(id, "within", "must be positive (got %s)", r.Within)
		}
	}
	r := c.Rules
	window(IDFailedAttempts, r.FailedAttempts)
	window(IDSprayIP, r.SprayIP)
	history(IDNewCountry, r.NewCountry)
	history(IDNewASN, r.NewASN)
	surge(IDSurgeDomain, r.SurgeDomain)
	surge(IDSurgeGroup, r.SurgeGroup)
	sequence(IDResetThenSecInfo, r.ResetThenSecInfo)
	sequence(IDAdminSecInfoThenReset, r.AdminSecInfoThenReset)
	window(IDAdminMassReset, r.AdminMassReset)
	if len(r.PrivilegedReset.Roles) == 0 {
		add(IDPrivilegedReset, "roles", "must list at least one role")
	}
	for i, role := range r.PrivilegedReset.Roles {
		if role == "" {
			errs = append(errs, fmt.Errorf("rules.%s.roles[%d]: must not be empty", IDPrivilegedReset, i))
		}
	}
	return errs
}

// Rule ids.
const (
	IDFailedAttempts        = "sspr-failed-attempts"
	IDSprayIP               = "sspr-spray-ip"
	IDNewCountry            = "sspr-new-country"
	IDNewASN                = "sspr-new-asn"
	IDSurgeDomain           = "sspr-surge-domain"
	IDSurgeGroup            = "sspr-surge-group"
	IDResetThenSecInfo      = "sspr-reset-then-secinfo"
	IDAdminSecInfoThenReset = "sspr-admin-secinfo-then-reset"
	IDAdminMassReset        = "sspr-admin-mass-reset"
	IDPrivilegedReset       = "sspr-privileged-reset"
)

// Longest is the longest span of events before a range that any enabled
// rule reads, plus its longest window: a schedule's lookback must cover it
// for a re-evaluation to find what an earlier one raised.
func (c Config) Longest() time.Duration {
	var d time.Duration
	r := c.Rules
	for _, w := range []WindowRule{r.FailedAttempts, r.SprayIP, r.AdminMassReset} {
		if w.Enabled {
			d = max(d, w.Window)
		}
	}
	for _, s := range []SurgeRule{r.SurgeDomain, r.SurgeGroup} {
		if s.Enabled {
			d = max(d, Day)
		}
	}
	for _, s := range []SequenceRule{r.ResetThenSecInfo, r.AdminSecInfoThenReset} {
		if s.Enabled {
			d = max(d, s.Within)
		}
	}
	return d
}
