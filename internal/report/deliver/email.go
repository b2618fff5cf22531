package deliver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// STARTTLS modes, the values of EmailConfig.StartTLS.
const (
	// StartTLSRequired upgrades the connection with STARTTLS and sends
	// nothing when the server does not offer it.
	StartTLSRequired = "required"
	// StartTLSOff sends in clear text; only without AUTH, to a relay that
	// accepts mail from the network it is on.
	StartTLSOff = "off"
)

// Authentication mechanisms, the values of EmailConfig.Auth.
const (
	AuthPlain = "plain"
	AuthLogin = "login"
)

// EmailConfig is a report's [reports.email] section: an SMTP submission
// server and the message sent through it.
type EmailConfig struct {
	Host string `toml:"host"`
	// Port defaults to 587 (submission), or 465 with ImplicitTLS.
	Port int `toml:"port"`
	// StartTLS is required (the default) or off.
	StartTLS string `toml:"starttls"`
	// ImplicitTLS speaks TLS from the start (submissions over TLS, port
	// 465) instead of upgrading with STARTTLS.
	ImplicitTLS bool `toml:"implicit_tls"`
	// Username and Password authenticate with AUTH, only ever over TLS;
	// no username sends without AUTH.
	Username string        `toml:"username"`
	Password secret.String `toml:"password"`
	// Auth is the mechanism: plain (the default) or login.
	Auth string   `toml:"auth"`
	From string   `toml:"from"`
	To   []string `toml:"to"`
	// Subject may hold {name}, {from} and {to} (the period's bounds as
	// dates); default "SSPR report {name}: {from} to {to}".
	Subject string `toml:"subject"`
	// CAFile is a PEM file of CA certificates that verify the server,
	// instead of the system's.
	CAFile string `toml:"ca_file"`
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// Timeout bounds one delivery, connection to QUIT; default 1m.
	Timeout time.Duration `toml:"timeout"`
}

// DefaultSubject is the subject when none is configured.
const DefaultSubject = "SSPR report {name}: {from} to {to}"

// IsSet reports whether any key of the section is set.
func (c EmailConfig) IsSet() bool {
	return c.Host != "" || c.Port != 0 || c.StartTLS != "" || c.ImplicitTLS || c.Username != "" || !c.Password.IsZero() ||
		c.Auth != "" || c.From != "" || len(c.To) > 0 || c.Subject != "" || c.CAFile != "" || c.InsecureSkipVerify || c.Timeout != 0
}

// WithDefaults returns c with its unset keys at their defaults (a
// [[reports]] element starts from zero values).
func (c EmailConfig) WithDefaults() EmailConfig {
	if c.StartTLS == "" {
		c.StartTLS = StartTLSRequired
	}
	if c.Port == 0 {
		c.Port = 587
		if c.ImplicitTLS {
			c.Port = 465
		}
	}
	if c.Auth == "" {
		c.Auth = AuthPlain
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.Timeout == 0 {
		c.Timeout = time.Minute
	}
	return c
}

// Validate returns every problem of the section, each starting with its key.
func (c EmailConfig) Validate() []error {
	c = c.WithDefaults()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Host == "" {
		add("host: must be set to the SMTP server's name")
	} else if strings.ContainsAny(c.Host, ":/ ") && net.ParseIP(c.Host) == nil {
		add("host: a host name or address without port (got %q)", c.Host)
	}
	if c.Port < 1 || c.Port > 65535 {
		add("port: must be between 1 and 65535 (got %d)", c.Port)
	}
	if c.StartTLS != StartTLSRequired && c.StartTLS != StartTLSOff {
		add("starttls: must be %s or %s (got %q)", StartTLSRequired, StartTLSOff, c.StartTLS)
	}
	if c.ImplicitTLS && c.StartTLS == StartTLSOff {
		add("starttls: leave it unset with implicit_tls (the connection is TLS from the start)")
	}
	if c.Username != "" && !c.ImplicitTLS && c.StartTLS == StartTLSOff {
		add("username: AUTH is sent only over TLS; set starttls = %q or implicit_tls = true", StartTLSRequired)
	}
	if c.Username != "" && c.Password.IsZero() {
		add("password: required with username")
	}
	if c.Username == "" && !c.Password.IsZero() {
		add("username: required with password")
	}
	if c.Auth != AuthPlain && c.Auth != AuthLogin {
		add("auth: must be %s or %s (got %q)", AuthPlain, AuthLogin, c.Auth)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		add("from: not an e-mail address (got %q)", c.From)
	}
	if len(c.To) == 0 {
		add("to: must list at least one address")
	}
	for i, a := range c.To {
		if _, err := mail.ParseAddress(a); err != nil {
			add("to[%d]: not an e-mail address (got %q)", i, a)
		}
	}
	if strings.ContainsAny(c.Subject, "\r\n") {
		add("subject: must be one line")
	}
	if c.Timeout < 0 {
		add("timeout: must not be negative")
	}
	if c.CAFile != "" && c.InsecureSkipVerify {
		add("insecure_skip_verify: set either it or ca_file, not both")
	}
	return errs
}

// Email sends deliveries as a message with the report and manifest
// attached.
type Email struct {
	cfg      EmailConfig
	tls      *tls.Config
	from     string
	to       []string
	redactor *secret.Redactor
	// dial opens the TCP connection (tests may point it elsewhere).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewEmail returns a deliverer through cfg's server; it connects to
// nothing yet.
func NewEmail(cfg EmailConfig) (*Email, error) {
	cfg = cfg.WithDefaults()
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	e := &Email{cfg: cfg, tls: tc, from: from.Address, redactor: secret.NewRedactor(cfg.Password.Reveal())}
	e.redactor.AddBasic(cfg.Username, cfg.Password.Reveal())
	for i, a := range cfg.To {
		to, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("to[%d]: %w", i, err)
		}
		e.to = append(e.to, to.Address)
	}
	var d net.Dialer
	e.dial = d.DialContext
	return e, nil
}

// Describe names the server and the recipients.
func (e *Email) Describe() string {
	return fmt.Sprintf("email smtp://%s to %s", net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.cfg.Port)), strings.Join(e.to, ","))
}

// errNoTLS is returned, before anything is sent, when TLS is required and
// the connection does not have it.
var errNoTLS = errors.New("the server does not offer STARTTLS; nothing was sent (starttls = \"required\")")

// Deliver sends one message to every recipient.
func (e *Email) Deliver(ctx context.Context, d Delivery) error {
	msg, err := e.message(d, time.Now())
	if err != nil {
		return err
	}
	if err := e.send(ctx, msg); err != nil {
		return e.redactor.RedactError(fmt.Errorf("%s: %w", e.Describe(), err))
	}
	return nil
}

func (e *Email) send(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	addr := net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.cfg.Port))
	conn, err := e.dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	// The SMTP client has no context: the deadline bounds every exchange,
	// and cancellation closes the connection.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var c *smtp.Client
	switch {
	case e.cfg.ImplicitTLS:
		tc := tls.Client(conn, e.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return fmt.Errorf("tls: %w", err)
		}
		c = smtp.NewClient(tc)
	case e.cfg.StartTLS == StartTLSRequired:
		c, err = smtp.NewClientStartTLS(conn, e.tls)
		if err != nil {
			_ = conn.Close()
			if strings.Contains(err.Error(), "support STARTTLS") {
				return errNoTLS
			}
			return fmt.Errorf("starttls: %w", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = e.cfg.Timeout, e.cfg.Timeout
	if e.cfg.Username != "" {
		// Checked here too, whatever the configuration says: the
		// password never crosses a connection without TLS.
		if _, ok := c.TLSConnectionState(); !ok {
			return errors.New("refusing to send AUTH over a connection without TLS")
		}
		if err := c.Auth(e.saslClient()); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(e.from, nil); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	for _, to := range e.to {
		if err := c.Rcpt(to, nil); err != nil {
			return fmt.Errorf("rcpt to %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return c.Quit()
}

func (e *Email) saslClient() sasl.Client {
	if e.cfg.Auth == AuthLogin {
		return sasl.NewLoginClient(e.cfg.Username, e.cfg.Password.Reveal())
	}
	return sasl.NewPlainClient("", e.cfg.Username, e.cfg.Password.Reveal())
}

// subject expands the subject template for d.
func (e *Email) subject(d Delivery) string {
	return strings.NewReplacer("{name}", d.Name, "{from}", d.From.UTC().Format(time.DateOnly), "{to}", d.To.UTC().Format(time.DateOnly)).Replace(e.cfg.Subject)
}

// message builds the MIME message: a short text part, then the report and
// the manifest as base64 attachments.
func (e *Email) message(d Delivery, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	boundary := randomBoundary()
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", e.cfg.From)
	h("To", strings.Join(e.cfg.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", e.subject(d)))
	h("Date", now.UTC().Format(time.RFC1123Z))
	h("Message-ID", fmt.Sprintf("<%s@sspr-exporter>", randomBoundary()))
	h("MIME-Version", "1.0")
	h("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": boundary}))
	b.WriteString("\r\n")

	fmt.Fprintf(&b, "--%s\r\n", boundary)
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "Report %s for %s to %s (UTC).\r\n", d.Name, d.From.UTC().Format(time.RFC3339), d.To.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Attached: %s and its manifest %s, which holds the report's SHA-256.\r\n", filepath.Base(d.Report), filepath.Base(d.Manifest))

	for _, p := range d.files() {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(p)
		fmt.Fprintf(&b, "\r\n--%s\r\n", boundary)
		h("Content-Type", mime.FormatMediaType(ContentType(p), map[string]string{"name": name}))
		h("Content-Transfer-Encoding", "base64")
		h("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		b.WriteString("\r\n")
		writeBase64Lines(&b, data)
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes(), nil
}

// writeBase64Lines writes data base64-encoded in lines of 76 characters,
// as RFC 2045 requires.
func writeBase64Lines(b *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for chunk := range slices.Chunk([]byte(enc), 76) {
		b.Write(chunk)
		b.WriteString("\r\n")
	}
}

func randomBoundary() string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}
