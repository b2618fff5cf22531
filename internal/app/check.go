package app

import (
	"context"
	"fmt"
	"time"
)

// checkResult is one line of the check command's report; note, when set,
// qualifies an OK.
type checkResult struct {
	name string
	note string
	err  error
}

// CheckCmd validates the config, then tries every configured endpoint and
// prints one line per check: OK, or FAIL with what to fix.
func CheckCmd(ctx context.Context, args []string, std Std) error {
	fs := newFlags("check", "check --config FILE\n\nValidates the config, then tries every configured endpoint (input files, Event\nHubs and the checkpoint container, Elasticsearch and OpenSearch and their\ntemplates, Kafka and its topics) and prints one line per check. Exit status 0 only when all pass.", std)
	cfgPath := fs.String("config", "", configUsage)
	timeout := fs.Duration("timeout", 30*time.Second, "time each endpoint check may take")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadReporting(*cfgPath, std.Out, "FAIL config: ")
	if err != nil {
		return err
	}
	fmt.Fprintln(std.Out, "OK   config")
	failed := false
	for _, r := range runChecks(ctx, componentsOf(cfg), *timeout) {
		if r.err != nil {
			failed = true
			fmt.Fprintf(std.Out, "FAIL %s: %v\n", r.name, r.err)
		} else if r.note != "" {
			fmt.Fprintf(std.Out, "OK   %s: %s\n", r.name, r.note)
		} else {
			fmt.Fprintf(std.Out, "OK   %s\n", r.name)
		}
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}

// runChecks tries the checks of every enabled component in turn, each
// with its own deadline.
func runChecks(ctx context.Context, comps components, timeout time.Duration) []checkResult {
	var checks []check
	for _, in := range comps.inputs {
		if in.enabled {
			checks = append(checks, in.checks...)
		}
	}
	for _, o := range comps.outputs {
		if o.enabled {
			checks = append(checks, check{o.key(), noNote(o.check)})
		}
	}
	for _, dl := range comps.deadLetters {
		if dl.enabled {
			checks = append(checks, check{dl.key, noNote(dl.check)})
		}
	}
	out := make([]checkResult, 0, len(checks))
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		note, err := c.run(cctx)
		cancel()
		out = append(out, checkResult{name: c.name, note: note, err: err})
	}
	return out
}
