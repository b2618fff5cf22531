// Package telemetry connects the exporter's metrics and readiness checker
// and serves them, with liveness, over HTTP. It knows no component: the
// wiring (internal/app) registers each one's readiness and counters.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/health"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/logging"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/metrics"
)

// DefaultAddress is where the endpoints listen unless configured: every
// interface, so that probes and scrapers from outside a container reach
// them. 9464 is the port OpenTelemetry's Prometheus exporters use.
const DefaultAddress = ":9464"

// Config is the [telemetry] section.
type Config struct {
	// Address is host:port of the HTTP server for /metrics, /healthz and
	// /readyz; empty turns the server off.
	Address string `toml:"address"`
	// ReadyStallTimeout: /readyz fails when no batch was acknowledged for
	// this long while events wait in the source. Zero turns the rule off.
	ReadyStallTimeout time.Duration `toml:"ready_stall_timeout"`
	// ShutdownTimeout bounds how long the server waits for requests in
	// progress when it stops.
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
	// LogRepeatInterval: records of one event (same level, message and
	// identifying attributes; see internal/telemetry/logging/ratelimit.go)
	// are written at most once per interval, then summarised as "repeated
	// N times". Zero turns rate limiting off.
	LogRepeatInterval time.Duration `toml:"log_repeat_interval"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Address:           DefaultAddress,
		ReadyStallTimeout: 5 * time.Minute,
		ShutdownTimeout:   5 * time.Second,
		LogRepeatInterval: logging.DefaultRepeatInterval,
	}
}

// Validate returns every problem of c.
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Address != "" {
		host, port, err := net.SplitHostPort(c.Address)
		if err != nil {
			add("address: %q is not host:port (e.g. \":9464\" or \"127.0.0.1:9464\")", c.Address)
		} else {
			if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
				add("address: port %q must be a number from 0 to 65535", port)
			}
			if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
				add("address: host %q is neither an IP address nor a host name", host)
			}
		}
	}
	if c.ReadyStallTimeout < 0 {
		add("ready_stall_timeout: must not be negative (0 turns the rule off)")
	} else if c.ReadyStallTimeout > 0 && c.ReadyStallTimeout < time.Second {
		add("ready_stall_timeout: must be at least 1s (0 turns the rule off)")
	}
	if c.ShutdownTimeout <= 0 {
		add("shutdown_timeout: must be positive")
	}
	if c.LogRepeatInterval < 0 {
		add("log_repeat_interval: must not be negative (0 turns rate limiting off)")
	}
	return errs
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Telemetry is the metrics, the readiness checker and the server of one
// exporter, connected: the checker's stall rule follows the metrics'
// progress and partition lag, and its state is exported as metrics.
type Telemetry struct {
	Metrics *metrics.Metrics
	Health  *health.Checker
	// Server serves both, once its owner starts it; with an empty
	// address it serves nothing, and the telemetry exports nowhere.
	Server *Server
}

// New builds the telemetry of an exporter. redactor (may be nil) cleans
// readiness reasons of registered secret values; pass the log handler's.
// Nothing listens before Server.Start.
func New(cfg Config, logger *slog.Logger, redactor *secret.Redactor) *Telemetry {
	m := metrics.New()
	hc := health.New(cfg.ReadyStallTimeout, health.WithRedactor(redactor.Redact))
	hc.WatchProgress(m.LastProgress, m.TotalLag)
	m.Registry().MustRegister(hc)
	return &Telemetry{Metrics: m, Health: hc, Server: newServer(cfg, logger, m.Gatherer(), hc)}
}

// Server serves /metrics, /healthz and /readyz.
type Server struct {
	cfg    Config
	log    *slog.Logger
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
	mu     sync.Mutex
	errSrv error
}

// newServer returns a server for metrics from g (metrics.Metrics.Gatherer)
// and readiness from checker. Registering checker in the metrics registry
// adds sspr_exporter_ready and sspr_exporter_component_ready.
func newServer(cfg Config, logger *slog.Logger, g prometheus.Gatherer, checker *health.Checker) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		// A collector failing must not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("/healthz", health.Healthz)
	mux.HandleFunc("/readyz", checker.Readyz)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "sspr-exporter: /metrics /healthz /readyz")
	})
	return &Server{
		cfg: cfg,
		log: logger,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			// Scrapes of a large registry may take a while to write.
			WriteTimeout: 30 * time.Second,
			IdleTimeout:  60 * time.Second,
			ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
}

// Start listens on the configured address and serves in the background
// until Shutdown. Listening happens before it returns, so a port in use is
// reported here. A server with an empty address does nothing.
func (s *Server) Start() error {
	if s.cfg.Address == "" {
		close(s.done)
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("telemetry listen %s: %w", s.cfg.Address, err)
	}
	s.ln = ln
	s.log.Info("telemetry endpoints listening", "address", ln.Addr().String())
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.errSrv = fmt.Errorf("telemetry serve: %w", err)
			s.mu.Unlock()
		}
	}()
	return nil
}

// Addr returns the address listened on (with the port chosen when the
// configured port was 0), or "" before Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting connections and waits for requests in progress,
// at most the configured shutdown timeout (or ctx). It returns the error
// that stopped serving, if any.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Requests still running past the deadline are cut off.
		_ = s.srv.Close()
		err = fmt.Errorf("telemetry shutdown: %w", err)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.errSrv)
}
