package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
)

// Prepare checks at start that what the sinks need is in place (index
// templates, ILM or ISM policy, topic), installing it first where the config says
// so. Its errors say what to do.
func Prepare(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	for _, o := range outputs(cfg) {
		if !o.enabled {
			continue
		}
		switch o.start {
		case startSetup:
			if _, err := o.setup(ctx, logger.With("component", "sink."+o.name)); err != nil {
				return fmt.Errorf("%s setup: %w", o.key(), err)
			}
		case startCheck:
			if err := o.check(ctx); err != nil {
				return fmt.Errorf("%s: %w", o.key(), err)
			}
		}
	}
	return nil
}

// Setup installs what the enabled sinks need: the Elasticsearch ILM policy
// and templates, the OpenSearch templates and ISM policy, the Kafka topic.
// Running it again changes nothing.
func Setup(ctx context.Context, cfg config.Config, logger *slog.Logger, report io.Writer) error {
	var able []string
	did := false
	for _, o := range outputs(cfg) {
		if o.setup == nil {
			continue
		}
		able = append(able, o.key())
		if !o.enabled {
			continue
		}
		what, err := o.setup(ctx, logger.With("component", "sink."+o.name))
		if err != nil {
			return fmt.Errorf("%s setup: %w", o.key(), err)
		}
		fmt.Fprintf(report, "%s: %s\n", o.name, what)
		did = true
	}
	if d, err := setupDetect(ctx, cfg, logger.With("component", "detect"), report); err != nil {
		return err
	} else if d {
		did = true
	}
	if !did {
		fmt.Fprintf(report, "nothing to set up: none of %s is enabled\n", andList(able))
	}
	return nil
}
