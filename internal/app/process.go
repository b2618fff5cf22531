package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/logging"
)

// process is what a command runs with: the logger and the telemetry of its
// config, started under the command's context. The command closes it
// before it returns, which stops both and waits for them.
type process struct {
	logger *slog.Logger
	tel    *telemetry.Telemetry
	log    *logging.Handler
	cfg    telemetry.Config
}

// startProcess starts a command's logger and telemetry. With serve, the
// telemetry endpoints listen on the configured address (a port in use is
// an error here); without, the telemetry collects but exports nowhere.
func startProcess(ctx context.Context, cfg config.Config, std Std, serve bool) (*process, error) {
	logger, lh := Logger(cfg, std.Err)
	lh.Start(ctx)
	tcfg := cfg.Telemetry
	if !serve {
		tcfg.Address = ""
	}
	p := &process{logger: logger, log: lh, cfg: tcfg}
	p.tel = telemetry.New(tcfg, logger.With("component", "telemetry"), lh.Redactor())
	if err := p.tel.Server.Start(); err != nil {
		_ = lh.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("telemetry.address: %w", err)
	}
	return p, nil
}

// close shuts the telemetry server down, then writes what the logger still
// holds back; it waits for both, also when ctx is already cancelled.
func (p *process) close(ctx context.Context) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
	defer cancel()
	_ = p.tel.Server.Shutdown(sctx)
	_ = p.log.Close(context.WithoutCancel(ctx))
}
