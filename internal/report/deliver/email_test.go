package deliver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	b64 "encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// testPKI is a CA and a server certificate it signed for 127.0.0.1.
type testPKI struct {
	caFile string
	server tls.Certificate
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "report test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testPKI{caFile: caFile, server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// smtpServer is a go-smtp server that records what its clients did.
type smtpServer struct {
	port int

	mu       sync.Mutex
	auths    []string // mechanisms clients started AUTH with
	authTLS  []bool   // whether each AUTH came over TLS
	mails    int      // MAIL FROM commands
	messages []received
}

type received struct {
	from string
	to   []string
	data []byte
}

const (
	testUser     = "reporter@contoso.example"
	testPassword = "s3cret-Pa55word"
)

type serverOpts struct {
	starttls    bool // advertise STARTTLS
	implicitTLS bool // the listener is TLS from the start
	cert        tls.Certificate
	// insecureAuth lets AUTH through without TLS, as a misconfigured
	// server would, to show the client refuses on its own.
	insecureAuth bool
}

func startSMTP(t *testing.T, o serverOpts) *smtpServer {
	t.Helper()
	rec := &smtpServer{}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: rec, conn: c}, nil
	}))
	s.Domain = "mx.test"
	s.AllowInsecureAuth = o.insecureAuth
	s.ReadTimeout, s.WriteTimeout = 30*time.Second, 30*time.Second
	tc := &tls.Config{Certificates: []tls.Certificate{o.cert}}
	if o.starttls {
		s.TLSConfig = tc
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec.port = l.Addr().(*net.TCPAddr).Port
	if o.implicitTLS {
		l = tls.NewListener(l, tc)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close(); <-done })
	return rec
}

type session struct {
	srv  *smtpServer
	conn *smtp.Conn
	msg  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.auths = append(s.srv.auths, mech)
	s.srv.authTLS = append(s.srv.authTLS, isTLS)
	s.srv.mu.Unlock()
	check := func(user, pass string) error {
		if user != testUser || pass != testPassword {
			return errors.New("invalid credentials")
		}
		return nil
	}
	if mech == sasl.Login {
		return &loginServer{check: check}, nil
	}
	return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.srv.mu.Lock()
	s.srv.mails++
	s.srv.mu.Unlock()
	s.msg = received{from: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.srv.mu.Lock()
	s.srv.messages = append(s.srv.messages, s.msg)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// has only a client for: it asks for the user name, then the password.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if resp != nil { // an initial response is the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

func (s *smtpServer) snapshot() (auths []string, authTLS []bool, mails int, msgs []received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...), append([]bool(nil), s.authTLS...), s.mails, append([]received(nil), s.messages...)
}

// writeDelivery writes a report and a manifest recording its SHA-256.
func writeDelivery(t *testing.T) Delivery {
	t.Helper()
	dir := t.TempDir()
	report := filepath.Join(dir, "weekly-2026-12-02.csv")
	body := "time,user,outcome\n2026-12-01T10:00:00Z,alice@contoso.example,success\n" + strings.Repeat("x", 300) + "\n"
	if err := os.WriteFile(report, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	m, _ := json.Marshal(map[string]any{"report": "resets", "file": filepath.Base(report), "sha256": hex.EncodeToString(sum[:])})
	manifest := report + ".manifest.json"
	if err := os.WriteFile(manifest, m, 0o644); err != nil {
		t.Fatal(err)
	}
	to := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	return Delivery{Name: "weekly", Report: report, Manifest: manifest, From: to.AddDate(0, 0, -7), To: to}
}

// attachments parses a received message and returns its attachments by
// file name, checking the structure on the way.
func attachments(t *testing.T, raw []byte) (subject string, files map[string][]byte) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message does not parse: %v", err)
	}
	dec := new(mime.WordDecoder)
	subject, err = dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q (%v), want multipart/mixed", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	files = map[string][]byte{}
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p) // the reader decodes quoted-printable only
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if !strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") || len(b) == 0 {
				t.Errorf("first part %q is not a text body", p.Header.Get("Content-Type"))
			}
			continue
		}
		if p.Header.Get("Content-Transfer-Encoding") != "base64" {
			t.Errorf("attachment %s is not base64", p.FileName())
		}
		data, err := decodeBase64(b)
		if err != nil {
			t.Fatalf("attachment %s: %v", p.FileName(), err)
		}
		files[p.FileName()] = data
	}
	return subject, files
}

func decodeBase64(b []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := io.Copy(&out, base64Reader(bytes.NewReader(b)))
	return out.Bytes(), err
}

func TestEmailDelivers(t *testing.T) {
	pki := newPKI(t)
	tests := []struct {
		name string
		srv  serverOpts
		cfg  func(c *EmailConfig, pki testPKI)
		mech string // the AUTH mechanism the server must see; "" none
	}{
		{"starttls plain", serverOpts{starttls: true}, func(c *EmailConfig, p testPKI) { c.CAFile = p.caFile }, sasl.Plain},
		{"starttls login", serverOpts{starttls: true}, func(c *EmailConfig, p testPKI) { c.CAFile, c.Auth = p.caFile, AuthLogin }, sasl.Login},
		{"implicit tls", serverOpts{implicitTLS: true}, func(c *EmailConfig, p testPKI) { c.CAFile, c.ImplicitTLS = p.caFile, true }, sasl.Plain},
		{"insecure skip verify", serverOpts{starttls: true}, func(c *EmailConfig, _ testPKI) { c.InsecureSkipVerify = true }, sasl.Plain},
		{"no auth", serverOpts{starttls: true}, func(c *EmailConfig, p testPKI) { c.CAFile, c.Username, c.Password = p.caFile, "", secret.String{} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.srv.cert = pki.server
			srv := startSMTP(t, tt.srv)
			cfg := EmailConfig{
				Host: "127.0.0.1", Port: srv.port, Username: testUser, Password: secret.New(testPassword),
				From: "SSPR exporter <sspr@contoso.example>", To: []string{"secops@contoso.example", "Audit <audit@contoso.example>"},
			}
			tt.cfg(&cfg, pki)
			if errs := cfg.Validate(); len(errs) > 0 {
				t.Fatalf("config: %v", errs)
			}
			e, err := NewEmail(cfg)
			if err != nil {
				t.Fatal(err)
			}
			d := writeDelivery(t)
			if err := e.Deliver(context.Background(), d); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			auths, authTLS, _, msgs := srv.snapshot()
			if tt.mech == "" && len(auths) > 0 || tt.mech != "" && (len(auths) != 1 || auths[0] != tt.mech || !authTLS[0]) {
				t.Errorf("server saw AUTH %v (over TLS %v), want %q over TLS", auths, authTLS, tt.mech)
			}
			if len(msgs) != 1 {
				t.Fatalf("server received %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.from != "sspr@contoso.example" || strings.Join(m.to, " ") != "secops@contoso.example audit@contoso.example" {
				t.Errorf("envelope from %q to %q", m.from, m.to)
			}
			subject, files := attachments(t, m.data)
			if subject != "SSPR report weekly: 2026-11-25 to 2026-12-02" {
				t.Errorf("subject %q", subject)
			}
			report, manifest := files[filepath.Base(d.Report)], files[filepath.Base(d.Manifest)]
			if len(files) != 2 || report == nil || manifest == nil {
				t.Fatalf("attachments %v, want the report and its manifest", keys(files))
			}
			var man struct{ SHA256 string }
			if err := json.Unmarshal(manifest, &man); err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(report); hex.EncodeToString(sum[:]) != man.SHA256 {
				t.Errorf("attached report's SHA-256 %x does not match the manifest's %s", sum, man.SHA256)
			}
			onDisk, _ := os.ReadFile(d.Manifest)
			if !bytes.Equal(onDisk, manifest) {
				t.Error("attached manifest differs from the file")
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestEmailRefuses: every way the password could reach a server it must
// not is refused before AUTH, and the error names no secret.
func TestEmailRefuses(t *testing.T) {
	pki := newPKI(t)
	other := newPKI(t) // a CA that did not sign the server's certificate
	tests := []struct {
		name     string
		srv      serverOpts
		cfg      func(c *EmailConfig)
		wantErr  string
		wantAuth bool // the server saw AUTH (and refused it)
	}{
		{"no starttls offered", serverOpts{insecureAuth: true}, func(c *EmailConfig) { c.CAFile = pki.caFile }, "does not offer STARTTLS", false},
		{"unknown CA", serverOpts{starttls: true}, func(c *EmailConfig) { c.CAFile = other.caFile }, "certificate", false},
		{"system pool", serverOpts{starttls: true}, func(*EmailConfig) {}, "certificate", false},
		{"implicit tls unknown CA", serverOpts{implicitTLS: true}, func(c *EmailConfig) { c.ImplicitTLS = true }, "certificate", false},
		// Validation refuses this config; the client refuses it anyway.
		{"starttls off with auth", serverOpts{insecureAuth: true}, func(c *EmailConfig) { c.StartTLS = StartTLSOff }, "without TLS", false},
		{"wrong password", serverOpts{starttls: true}, func(c *EmailConfig) { c.CAFile, c.Password = pki.caFile, secret.New("wrong-"+testPassword) }, "auth", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.srv.cert = pki.server
			srv := startSMTP(t, tt.srv)
			cfg := EmailConfig{Host: "127.0.0.1", Port: srv.port, Username: testUser, Password: secret.New(testPassword),
				From: "sspr@contoso.example", To: []string{"secops@contoso.example"}}
			tt.cfg(&cfg)
			e, err := NewEmail(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = e.Deliver(context.Background(), writeDelivery(t))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Deliver error %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), cfg.Password.Reveal()) {
				t.Errorf("error reveals the password: %v", err)
			}
			auths, _, mails, msgs := srv.snapshot()
			if (len(auths) > 0) != tt.wantAuth || mails != 0 || len(msgs) != 0 {
				t.Errorf("server saw AUTH %v, %d MAIL, %d messages; want AUTH %v and no mail", auths, mails, len(msgs), tt.wantAuth)
			}
		})
	}
}

func TestEmailValidate(t *testing.T) {
	ok := EmailConfig{Host: "smtp.contoso.example", Username: "u", Password: secret.New("p"), From: "a@contoso.example", To: []string{"b@contoso.example"}}
	tests := []struct {
		name string
		edit func(*EmailConfig)
		want string // "" valid; else a substring of the first error
	}{
		{"valid", func(*EmailConfig) {}, ""},
		{"no host", func(c *EmailConfig) { c.Host = "" }, "host:"},
		{"host with port", func(c *EmailConfig) { c.Host = "smtp.contoso.example:25" }, "host:"},
		{"bad port", func(c *EmailConfig) { c.Port = 70000 }, "port:"},
		{"bad starttls", func(c *EmailConfig) { c.StartTLS = "maybe" }, "starttls:"},
		{"auth without tls", func(c *EmailConfig) { c.StartTLS = StartTLSOff }, "username: AUTH is sent only over TLS"},
		{"off without auth", func(c *EmailConfig) { c.StartTLS, c.Username, c.Password = StartTLSOff, "", secret.String{} }, ""},
		{"implicit and off", func(c *EmailConfig) { c.StartTLS, c.ImplicitTLS = StartTLSOff, true }, "starttls:"},
		{"user without password", func(c *EmailConfig) { c.Password = secret.String{} }, "password:"},
		{"bad auth", func(c *EmailConfig) { c.Auth = "cram-md5" }, "auth:"},
		{"bad from", func(c *EmailConfig) { c.From = "nobody" }, "from:"},
		{"no to", func(c *EmailConfig) { c.To = nil }, "to:"},
		{"bad to", func(c *EmailConfig) { c.To = []string{"b@contoso.example", "x"} }, "to[1]:"},
		{"two-line subject", func(c *EmailConfig) { c.Subject = "a\r\nBcc: x@y" }, "subject:"},
		{"ca and skip", func(c *EmailConfig) { c.CAFile, c.InsecureSkipVerify = "/ca.pem", true }, "insecure_skip_verify:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.To = append([]string(nil), ok.To...)
			tt.edit(&c)
			errs := c.Validate()
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("errors %v, want none", errs)
			case tt.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tt.want)):
				t.Errorf("errors %v, want first containing %q", errs, tt.want)
			}
		})
	}
}

func TestEmailDefaults(t *testing.T) {
	for _, tt := range []struct {
		implicit bool
		port     int
	}{{false, 587}, {true, 465}} {
		c := EmailConfig{ImplicitTLS: tt.implicit}.WithDefaults()
		if c.Port != tt.port || c.StartTLS != StartTLSRequired || c.Auth != AuthPlain || c.Subject != DefaultSubject {
			t.Errorf("implicit_tls %v: defaults %+v", tt.implicit, c)
		}
	}
	if got := (&Email{cfg: EmailConfig{Host: "h", Port: 25}.WithDefaults(), to: []string{"a@b"}}).Describe(); got != "email smtp://h:"+strconv.Itoa(25)+" to a@b" {
		t.Errorf("Describe %q", got)
	}
}

func base64Reader(r io.Reader) io.Reader { return b64.NewDecoder(b64.StdEncoding, r) }
