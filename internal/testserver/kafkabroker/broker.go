// Package kafkabroker runs a real single-node Apache Kafka broker (KRaft) on
// loopback for tests: a plaintext listener, a SASL_SSL listener with
// SCRAM-SHA-256/512 and PLAIN (the same user and password for all three), and an SSL listener that requires a client
// certificate. The broker's jars are installed by scripts/deps/kafka.sh.
package kafkabroker

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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Version is the Apache Kafka release the deps script installs.
const Version = "4.1.2"

// DepsScript is the script that installs what this package needs.
const DepsScript = "scripts/deps/kafka.sh"

// Options tune a broker. The zero value is a usable broker.
type Options struct {
	// User and Password are the SCRAM credentials created at format time
	// for both SCRAM-SHA-256 and SCRAM-SHA-512. Defaults: "sspr-test" and a
	// random password.
	User     string
	Password string
	// MessageMaxBytes sets the broker's message.max.bytes when positive.
	MessageMaxBytes int
	// Properties are extra server.properties entries; they win over the
	// helper's own.
	Properties map[string]string
	// StartTimeout bounds each start; default 90s (two cores shared with
	// other tests can make a cold JVM slow).
	StartTimeout time.Duration
}

// Broker is a running (or stopped) test broker. Its data directory survives
// Stop and Restart and is removed by Close.
type Broker struct {
	opts    Options
	java    string
	libs    string
	dir     string
	ports   ports
	pki     *pki
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	closed bool
}

type ports struct{ plain, sasl, mtls, controller int }

// Required reports whether missing test servers must fail tests rather than
// skip them (CI=true or SSPR_REQUIRE_SERVERS=1).
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SSPR_REQUIRE_SERVERS") == "1"
}

// Unavailable fails t when servers are required and skips it otherwise,
// naming the deps script that installs the broker.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("kafka test broker unavailable: %v", err)
	}
	t.Skipf("kafka test broker unavailable (run %s as root): %v", DepsScript, err)
}

// InstallDir returns the directory the deps script installs Kafka into, or
// an error when the installation is missing or incomplete.
func InstallDir() (string, error) {
	cache := os.Getenv("SSPR_TEST_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locate test cache: %w", err)
		}
		cache = filepath.Join(home, ".cache", "sspr-exporter-test")
	}
	dir := filepath.Join(cache, "kafka-"+Version)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return "", fmt.Errorf("kafka %s not installed in %s (run %s)", Version, dir, DepsScript)
	}
	return dir, nil
}

// Java returns the java binary the broker runs on: $SSPR_JAVA or java on PATH.
func Java() (string, error) {
	if j := os.Getenv("SSPR_JAVA"); j != "" {
		return j, nil
	}
	j, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("java 17+ not found on PATH (run %s): %w", DepsScript, err)
	}
	return j, nil
}

// Classpath returns the classpath wildcard of the installed Kafka jars, for
// tests that run small Java programs against kafka-clients.
func Classpath() (string, error) {
	dir, err := InstallDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "libs", "*"), nil
}

// Start starts a broker for t, or skips/fails t when Kafka is not installed.
// The broker is closed in t.Cleanup.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	if _, err := InstallDir(); err != nil {
		Unavailable(t, err)
	}
	b, err := New(opts)
	if err != nil {
		t.Fatalf("start kafka broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close kafka broker: %v", err)
		}
	})
	return b
}

// New formats a fresh data directory and starts a broker on free loopback
// ports. The caller must Close it; TestMain uses this to share one broker.
func New(opts Options) (*Broker, error) {
	home, err := InstallDir()
	if err != nil {
		return nil, err
	}
	java, err := Java()
	if err != nil {
		return nil, err
	}
	if opts.User == "" {
		opts.User = "sspr-test"
	}
	if opts.Password == "" {
		buf := make([]byte, 12)
		if _, err := rand.Read(buf); err != nil {
			return nil, fmt.Errorf("random password: %w", err)
		}
		opts.Password = hex.EncodeToString(buf)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 90 * time.Second
	}
	dir, err := os.MkdirTemp("", "kafkabroker-")
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	b := &Broker{opts: opts, java: java, libs: filepath.Join(home, "libs", "*"), dir: dir,
		logPath: filepath.Join(dir, "broker.log")}
	if err := b.prepare(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := b.start(); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// PlainAddr is the plaintext listener, host:port.
func (b *Broker) PlainAddr() string { return addr(b.ports.plain) }

// SASLAddr is the SASL_SSL (SCRAM-SHA-256/512 and PLAIN) listener, host:port.
func (b *Broker) SASLAddr() string { return addr(b.ports.sasl) }

// MTLSAddr is the SSL listener that requires a client certificate signed by
// the test CA, host:port.
func (b *Broker) MTLSAddr() string { return addr(b.ports.mtls) }

// User is the SCRAM user name.
func (b *Broker) User() string { return b.opts.User }

// Password is the SCRAM user's password.
func (b *Broker) Password() string { return b.opts.Password }

// CAPEM is the PEM certificate of the CA that signed the broker's and the
// client's certificates.
func (b *Broker) CAPEM() []byte { return bytes.Clone(b.pki.caPEM) }

// CAFile is the path of CAPEM on disk.
func (b *Broker) CAFile() string { return filepath.Join(b.dir, "ca.pem") }

// ClientCertFile is a PEM client certificate accepted by the MTLS listener.
func (b *Broker) ClientCertFile() string { return filepath.Join(b.dir, "client.pem") }

// ClientKeyFile is the PEM (PKCS#8) key of ClientCertFile.
func (b *Broker) ClientKeyFile() string { return filepath.Join(b.dir, "client-key.pem") }

// LogTail returns the last n bytes of the broker's output, for failure messages.
func (b *Broker) LogTail(n int) string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return ""
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func freePorts(n int) ([]int, error) {
	// All listeners are held open together so the ports are distinct.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func (b *Broker) prepare() error {
	ps, err := freePorts(4)
	if err != nil {
		return err
	}
	b.ports = ports{plain: ps[0], sasl: ps[1], mtls: ps[2], controller: ps[3]}
	if b.pki, err = newPKI(); err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.pem":         b.pki.caPEM,
		"keystore.pem":   append(bytes.Clone(b.pki.serverKeyPEM), b.pki.serverCertPEM...),
		"client.pem":     b.pki.clientCertPEM,
		"client-key.pem": b.pki.clientKeyPEM,
		"log4j2.properties": []byte(strings.Join([]string{
			"status = warn",
			"appender.out.type = Console",
			"appender.out.name = OUT",
			"appender.out.layout.type = PatternLayout",
			"appender.out.layout.pattern = [%d] %p %m (%c)%n",
			"rootLogger.level = WARN",
			"rootLogger.appenderRef.out.ref = OUT",
		}, "\n") + "\n"),
		"server.properties": b.serverProperties(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(b.dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	clusterID, err := newClusterID()
	if err != nil {
		return err
	}
	args := append(b.jvmArgs(), "kafka.tools.StorageTool", "format",
		"--cluster-id", clusterID,
		"--config", filepath.Join(b.dir, "server.properties"),
		"--add-scram", b.scramArg("SCRAM-SHA-256"),
		"--add-scram", b.scramArg("SCRAM-SHA-512"),
	)
	out, err := exec.Command(b.java, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("format kafka storage: %w: %s", err, out)
	}
	return nil
}

func (b *Broker) scramArg(mech string) string {
	return fmt.Sprintf(`%s=[name=%q,password=%q]`, mech, b.opts.User, b.opts.Password)
}

// newClusterID makes a Kafka Uuid string; one starting with '-' would be
// read as an option by the storage tool, so those are drawn again.
func newClusterID() (string, error) {
	for {
		buf := make([]byte, 16)
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("cluster id: %w", err)
		}
		id := base64.RawURLEncoding.EncodeToString(buf)
		if id[0] != '-' {
			return id, nil
		}
	}
}

func (b *Broker) jvmArgs() []string {
	return []string{
		"-Xms256m", "-Xmx512m",
		// Serial GC keeps the JVM from competing for the two shared cores
		// with parallel GC threads.
		"-XX:+UseSerialGC",
		"-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(b.dir, "log4j2.properties"),
		"-cp", b.libs,
	}
}

func (b *Broker) serverProperties() []byte {
	p := map[string]string{
		"process.roles":                                         "broker,controller",
		"node.id":                                               "1",
		"controller.quorum.voters":                              "1@" + addr(b.ports.controller),
		"controller.listener.names":                             "CONTROLLER",
		"inter.broker.listener.name":                            "PLAINTEXT",
		"listeners":                                             fmt.Sprintf("PLAINTEXT://%s,SASL_SSL://%s,MTLS://%s,CONTROLLER://%s", addr(b.ports.plain), addr(b.ports.sasl), addr(b.ports.mtls), addr(b.ports.controller)),
		"advertised.listeners":                                  fmt.Sprintf("PLAINTEXT://%s,SASL_SSL://%s,MTLS://%s", addr(b.ports.plain), addr(b.ports.sasl), addr(b.ports.mtls)),
		"listener.security.protocol.map":                        "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL,CONTROLLER:PLAINTEXT",
		"log.dirs":                                              filepath.Join(b.dir, "data"),
		"num.partitions":                                        "1",
		"default.replication.factor":                            "1",
		"min.insync.replicas":                                   "1",
		"offsets.topic.replication.factor":                      "1",
		"offsets.topic.num.partitions":                          "1",
		"transaction.state.log.replication.factor":              "1",
		"transaction.state.log.min.isr":                         "1",
		"transaction.state.log.num.partitions":                  "1",
		"share.coordinator.state.topic.replication.factor":      "1",
		"share.coordinator.state.topic.min.isr":                 "1",
		"group.initial.rebalance.delay.ms":                      "0",
		"auto.create.topics.enable":                             "false",
		"num.network.threads":                                   "2",
		"num.io.threads":                                        "2",
		"sasl.enabled.mechanisms":                               "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
		"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"listener.name.sasl_ssl.plain.sasl.jaas.config":         fmt.Sprintf("org.apache.kafka.common.security.plain.PlainLoginModule required user_%s=%q;", b.opts.User, b.opts.Password),
		"listener.name.mtls.ssl.client.auth":                    "required",
		"ssl.keystore.type":                                     "PEM",
		"ssl.keystore.location":                                 filepath.Join(b.dir, "keystore.pem"),
		"ssl.truststore.type":                                   "PEM",
		"ssl.truststore.location":                               filepath.Join(b.dir, "ca.pem"),
		// The authorizer lets tests deny a SCRAM user a topic with an ACL;
		// everyone else keeps full access.
		"authorizer.class.name":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"allow.everyone.if.no.acl.found": "true",
		"super.users":                    "User:ANONYMOUS",
	}
	if b.opts.MessageMaxBytes > 0 {
		p["message.max.bytes"] = strconv.Itoa(b.opts.MessageMaxBytes)
	}
	for k, v := range b.opts.Properties {
		p[k] = v
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	for _, k := range keys {
		// Properties files treat backslashes as escapes; none of the values
		// above carry one except possibly Windows paths, which tests never use.
		fmt.Fprintf(&buf, "%s=%s\n", k, p[k])
	}
	return buf.Bytes()
}

func (b *Broker) start() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("kafka broker closed")
	}
	if b.cmd != nil {
		b.mu.Unlock()
		return errors.New("kafka broker already running")
	}
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.mu.Unlock()
		return fmt.Errorf("broker log: %w", err)
	}
	args := append(b.jvmArgs(), "kafka.Kafka", filepath.Join(b.dir, "server.properties"))
	cmd := exec.Command(b.java, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a signal aimed at the test binary's group
	// (Ctrl-C) does not race with our orderly stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		b.mu.Unlock()
		return fmt.Errorf("start kafka broker: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
	b.cmd, b.exited = cmd, exited
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), b.opts.StartTimeout)
	defer cancel()
	if err := b.waitReady(ctx, exited); err != nil {
		_ = b.Stop()
		return fmt.Errorf("kafka broker not ready: %w\n%s", err, b.LogTail(4000))
	}
	return nil
}

// waitReady polls until the broker lists itself in metadata on the plaintext
// listener and a SCRAM-SHA-512 login succeeds on the SASL_SSL listener (the
// SCRAM credentials are applied from the metadata log shortly after start).
func (b *Broker) waitReady(ctx context.Context, exited <-chan struct{}) error {
	var last error
	for {
		select {
		case <-exited:
			return errors.New("broker process exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
		if last = b.probe(ctx); last == nil {
			return nil
		}
	}
}

func (b *Broker) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(b.PlainAddr()), Timeout: 3 * time.Second,
		Transport: &kafka.Transport{DialTimeout: time.Second}}
	md, err := c.Metadata(pctx, &kafka.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if len(md.Brokers) == 0 {
		return errors.New("metadata lists no brokers yet")
	}
	mech, err := scram.Mechanism(scram.SHA512, b.opts.User, b.opts.Password)
	if err != nil {
		return fmt.Errorf("scram: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b.pki.caPEM)
	d := &kafka.Dialer{Timeout: 3 * time.Second, SASLMechanism: mech,
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(pctx, "tcp", b.SASLAddr())
	if err != nil {
		return fmt.Errorf("scram login: %w", err)
	}
	return conn.Close()
}

// Stop stops the broker process (SIGTERM, then SIGKILL after 20s) and keeps
// its data directory and ports for Restart.
func (b *Broker) Stop() error { return b.stop(syscall.SIGTERM, 20*time.Second) }

// Kill stops the broker with SIGKILL at once, like a crash.
func (b *Broker) Kill() error { return b.stop(syscall.SIGKILL, 0) }

func (b *Broker) stop(sig syscall.Signal, grace time.Duration) error {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.cmd, b.exited = nil, nil
	b.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal kafka broker pid %d: %w", cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill kafka broker pid %d: %w", cmd.Process.Pid, err)
	}
	<-exited
	return nil
}

// Restart starts a stopped broker again on the same ports with the same data.
func (b *Broker) Restart() error { return b.start() }

// Close stops the broker and removes its data directory.
func (b *Broker) Close() error {
	err := b.Kill()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	if rerr := os.RemoveAll(b.dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove kafka data dir: %w", rerr)
	}
	return err
}

// Shared is one broker for every test of a package: starting a JVM is the
// slowest part of the Kafka tests. Start it in TestMain with Run; tests
// get it with Get.
type Shared struct {
	b   *Broker
	err error
}

// Run starts the broker (when Kafka is installed), runs the tests, stops
// the broker and returns the tests' exit code.
func (s *Shared) Run(m *testing.M, opts Options) int {
	if _, err := InstallDir(); err != nil {
		s.err = err
	} else {
		s.b, s.err = New(opts)
	}
	code := m.Run()
	if s.b != nil {
		if err := s.b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close kafka broker:", err)
		}
	}
	return code
}

// Get returns the broker, or skips (fails under CI) t when it could not
// start.
func (s *Shared) Get(t testing.TB) *Broker {
	t.Helper()
	if s.b == nil {
		Unavailable(t, s.err)
	}
	return s.b
}
