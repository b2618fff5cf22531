// Package searchnode runs real single-node Elasticsearch 8.19, Elasticsearch
// 9.5 and OpenSearch 2.19 servers for tests: each a java process with HTTP on
// 127.0.0.1 (a free port, kept across restarts), a temporary data directory,
// security and every optional plugin off. The engines' jars and the launcher
// of test/searchnode are installed by scripts/deps/searchnodes.sh.
package searchnode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DepsScript is the script that installs the engines.
const DepsScript = "scripts/deps/searchnodes.sh"

// Engine is one search engine release.
type Engine int

// The engines a node can run. Versions are pinned exactly: the launcher uses
// internal APIs that change between minor releases.
const (
	ES8 Engine = iota + 1
	ES9
	OpenSearch2
)

type engineSpec struct {
	name    string
	module  string // test/searchnode/<module>, and the install directory's prefix
	version string
	main    string
	elastic bool
	// jvmArgs are the engine's own JVM arguments, given its install directory.
	jvmArgs func(dir string) []string
}

var specs = map[Engine]engineSpec{
	ES8: {name: "Elasticsearch", module: "es8", version: "8.19.21",
		main: "org.elasticsearch.node.ElasticsearchNodeMain", elastic: true},
	ES9: {name: "Elasticsearch", module: "es9", version: "9.5.3",
		main: "org.elasticsearch.node.ElasticsearchNodeMain", elastic: true,
		jvmArgs: func(dir string) []string {
			return []string{
				// Lucene and Elasticsearch call native code through the FFM
				// API, Netty uses sun.misc.Unsafe: Java 25 warns on stderr
				// about both unless they are allowed explicitly.
				"--enable-native-access=ALL-UNNAMED",
				"--sun-misc-unsafe-memory-access=allow",
				// The system's libzstd, linked there by the deps script, in
				// place of the unpublished native library directory. Without
				// it native access is off and best_compression shards fail.
				"-Des.nativelibs.path=" + filepath.Join(dir, "native"),
				// Elasticsearch's own vector library is not published either;
				// asking for it would turn native access off altogether.
				"-Dorg.elasticsearch.nativeaccess.enableVectorLibrary=false",
			}
		}},
	OpenSearch2: {name: "OpenSearch", module: "opensearch2", version: "2.19.6",
		main: "ssprexporter.searchnode.OpenSearchNodeMain"},
}

// Engines lists every engine, for tests that run against each.
func Engines() []Engine { return []Engine{ES8, ES9, OpenSearch2} }

func (e Engine) spec() engineSpec {
	s, ok := specs[e]
	if !ok {
		panic(fmt.Sprintf("searchnode: unknown engine %d", int(e)))
	}
	return s
}

// String names the engine and its version, e.g. "Elasticsearch 8.19.21".
func (e Engine) String() string { return e.spec().name + " " + e.spec().version }

// Version is the engine's release, e.g. "8.19.21".
func (e Engine) Version() string { return e.spec().version }

// Elasticsearch reports whether the engine is Elasticsearch (not OpenSearch).
func (e Engine) Elasticsearch() bool { return e.spec().elastic }

// install is one engine's installation in the test cache.
type install struct {
	dir       string
	java      string
	classpath string
}

// installation finds the engine installed by DepsScript, or says why not.
func (e Engine) installation() (install, error) {
	cache := os.Getenv("SSPR_TEST_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return install{}, fmt.Errorf("locate test cache: %w", err)
		}
		cache = filepath.Join(home, ".cache", "sspr-exporter-test")
	}
	s := e.spec()
	dir := filepath.Join(cache, "searchnode", s.module+"-"+s.version)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return install{}, fmt.Errorf("%s not installed in %s (run %s)", e, dir, DepsScript)
	}
	java, err := os.ReadFile(filepath.Join(dir, "java"))
	if err != nil {
		return install{}, fmt.Errorf("%s: java of the installation: %w (run %s)", e, err, DepsScript)
	}
	return install{
		dir:       dir,
		java:      strings.TrimSpace(string(java)),
		classpath: filepath.Join(dir, "classes") + string(os.PathListSeparator) + filepath.Join(dir, "lib", "*"),
	}, nil
}

// Option changes how a node is started.
type Option func(*config)

type config struct {
	settings []string // key=value, in the order given
	heap     string
	timeout  time.Duration
}

// Setting passes a node setting (elasticsearch.yml key) to the node, e.g.
// Setting("http.max_content_length", "1mb"); it wins over the defaults.
func Setting(key, value string) Option {
	return func(c *config) { c.settings = append(c.settings, key+"="+value) }
}

// Heap sets the JVM's maximum heap (-Xmx), e.g. "256m"; default "512m".
func Heap(size string) Option { return func(c *config) { c.heap = size } }

// StartTimeout bounds each start, until the cluster is yellow; default 3m
// (two shared cores can make a cold JVM slow).
func StartTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// Node is a running (or stopped) single-node cluster. Its data directory and
// HTTP port survive Stop, Kill and Restart.
type Node struct {
	engine  Engine
	inst    install
	cfg     config
	home    string
	logPath string
	// shared nodes belong to every test of the binary: no test may stop them.
	shared bool

	mu        sync.Mutex
	port      int
	cmd       *exec.Cmd
	stdin     io.Closer // held open while the node runs; see launch
	exited    chan struct{}
	exitErr   error
	startTime time.Duration
}

// Required reports whether a node that cannot start fails the test
// instead of skipping it: when CI=true or SSPR_REQUIRE_SERVERS=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SSPR_REQUIRE_SERVERS") == "1"
}

// unavailable skips tb with the reason, or fails it when Required.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if Required() {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// Start starts a node of engine e for t, stopped in t.Cleanup; its data
// directory and log file are in t.TempDir(). When the engine is not
// installed or the node cannot start, t is skipped, or fails when servers
// are required (Required). An idle node of Shared is stopped
// first, so that one node runs at a time.
func Start(t testing.TB, e Engine, opts ...Option) *Node {
	t.Helper()
	inst, err := e.installation()
	if err != nil {
		unavailable(t, "search node unavailable: %v", err)
	}
	pool.parkIdle(t, 0)
	dir := t.TempDir()
	n := newNode(e, inst, filepath.Join(dir, "home"), filepath.Join(dir, "node.log"), opts)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log %s, last lines:\n%s", e, n.logPath, n.LogTail(16000))
		}
		if err := n.stop(syscall.SIGTERM); err != nil {
			t.Errorf("stop %s: %v", e, err)
		}
	})
	if err := n.start(); err != nil {
		unavailable(t, "search node unavailable: %v\n%s", err, n.LogTail(16000))
	}
	return n
}

func newNode(e Engine, inst install, home, logPath string, opts []Option) *Node {
	cfg := config{heap: "512m", timeout: 3 * time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	return &Node{engine: e, inst: inst, cfg: cfg, home: home, logPath: logPath}
}

// Engine is the node's engine.
func (n *Node) Engine() Engine { return n.engine }

// URL is the node's HTTP address, http://127.0.0.1:PORT.
func (n *Node) URL() string { return "http://127.0.0.1:" + strconv.Itoa(n.Port()) }

// Port is the node's HTTP port, the same across restarts.
func (n *Node) Port() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.port
}

// PID is the process id of the running node, or 0.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// StartTime is how long the last start took, from exec to a yellow cluster.
func (n *Node) StartTime() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.startTime
}

// LogPath is the file the node's output goes to.
func (n *Node) LogPath() string { return n.logPath }

// LogTail returns the last limit bytes of the node's output, reading only
// those: a node's log runs to megabytes.
func (n *Node) LogTail(limit int) string {
	f, err := os.Open(n.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	from := max(st.Size()-int64(limit), 0)
	buf := make([]byte, st.Size()-from)
	k, _ := f.ReadAt(buf, from)
	return string(buf[:k])
}

func (n *Node) args() []string {
	s := n.engine.spec()
	args := []string{
		"-Xms64m", "-Xmx" + n.cfg.heap,
		// Serial GC keeps the JVM from competing for the two shared cores
		// with parallel GC threads.
		"-XX:+UseSerialGC",
		// The C1 compiler only: a test node lives seconds to minutes, and on
		// two busy cores C2's compile threads made start-up about 2.5 times
		// slower and the first 10,000 documents slower too.
		"-XX:TieredStopAtLevel=1",
		"-XX:+ExitOnOutOfMemoryError",
		// No hsperfdata files in /tmp from every test node.
		"-XX:-UsePerfData",
		"-Dfile.encoding=UTF-8",
	}
	if s.jvmArgs != nil {
		args = append(args, s.jvmArgs(n.inst.dir)...)
	}
	args = append(args, "-cp", n.inst.classpath, s.main, n.home)
	for _, kv := range n.cfg.settings {
		args = append(args, "-E", kv)
	}
	if n.port != 0 {
		// A restart binds the port of the first start: clients keep their URL.
		args = append(args, "-E", "http.port="+strconv.Itoa(n.port))
	}
	return args
}

const readyPrefix = "listening http://127.0.0.1:"

func (n *Node) start() error {
	began := time.Now()
	ready, exited, err := n.launch()
	if err != nil {
		return err
	}
	timer := time.NewTimer(n.cfg.timeout)
	defer timer.Stop()
	select {
	case port := <-ready:
		n.mu.Lock()
		n.port, n.startTime = port, time.Since(began)
		n.mu.Unlock()
		return nil
	case <-exited:
		n.mu.Lock()
		err := n.exitErr
		n.cmd = nil
		n.mu.Unlock()
		return fmt.Errorf("%s exited before it was ready: %v", n.engine, err)
	case <-timer.C:
		_ = n.stop(syscall.SIGKILL)
		return fmt.Errorf("%s not ready after %v", n.engine, n.cfg.timeout)
	}
}

// launch starts the launcher process; ready receives the HTTP port once
// the cluster is yellow, exited closes when the process has exited.
func (n *Node) launch() (ready <-chan int, exited <-chan struct{}, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil, nil, fmt.Errorf("%s already running", n.engine)
	}
	if err := os.MkdirAll(n.home, 0o700); err != nil {
		return nil, nil, fmt.Errorf("%s home: %w", n.engine, err)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("%s log: %w", n.engine, err)
	}
	cmd := exec.Command(n.inst.java, n.args()...)
	cmd.Dir = n.home
	cmd.Stderr = logf
	// Its own process group, so that Ctrl-C aimed at the test binary does
	// not race with the orderly stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The launcher stops when its stdin closes. The pipe's write end lives
	// as long as this process (Wait closes it), so a test binary that dies
	// leaves no node behind.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_ = logf.Close()
		return nil, nil, fmt.Errorf("%s stdin: %w", n.engine, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		_ = logf.Close()
		return nil, nil, fmt.Errorf("%s stdout: %w", n.engine, err)
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, nil, fmt.Errorf("start %s: %w", n.engine, err)
	}
	readyc := make(chan int, 1)
	done := make(chan struct{})
	n.cmd, n.stdin, n.exited, n.exitErr = cmd, stdin, done, nil
	go func() {
		watchStdout(stdout, logf, readyc)
		err := cmd.Wait()
		_ = logf.Close()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
	return readyc, done, nil
}

// watchStdout copies the launcher's stdout to the log and sends the HTTP
// port of its ready line, until the process closes its stdout.
func watchStdout(stdout io.Reader, log io.Writer, ready chan<- int) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if p, ok := strings.CutPrefix(line, readyPrefix); ok {
			if port, err := strconv.Atoi(p); err == nil {
				select {
				case ready <- port:
				default:
				}
			}
		}
	}
	// Drain whatever is left so that the process never blocks on a full pipe.
	_, _ = io.Copy(log, stdout)
}

var errShared = errors.New("a shared node is stopped only by searchnode.Main: use Start for a node of your own")

// Stop stops the node with SIGTERM (SIGKILL after 30s), keeping its data
// directory and port for Restart.
func (n *Node) Stop() error {
	if n.shared {
		return errShared
	}
	return n.stop(syscall.SIGTERM)
}

// Kill stops the node with SIGKILL at once, like a crash.
func (n *Node) Kill() error {
	if n.shared {
		return errShared
	}
	return n.stop(syscall.SIGKILL)
}

// Restart stops the node if it runs, then starts it again on the same data
// directory and HTTP port.
func (n *Node) Restart() error {
	if n.shared {
		return errShared
	}
	if err := n.stop(syscall.SIGTERM); err != nil {
		return err
	}
	return n.start()
}

// running reports whether the node's process is alive.
func (n *Node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

const stopGrace = 30 * time.Second

func (n *Node) stop(sig syscall.Signal) error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s pid %d: %w", n.engine, cmd.Process.Pid, err)
	}
	if sig != syscall.SIGKILL {
		select {
		case <-exited:
			return nil
		case <-time.After(stopGrace):
		}
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("kill %s pid %d: %w", n.engine, cmd.Process.Pid, err)
		}
	}
	<-exited
	return nil
}
