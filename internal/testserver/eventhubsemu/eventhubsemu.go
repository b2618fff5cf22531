// Package eventhubsemu starts the project's Event Hubs emulator
// (test/eventhubs-emulator, Node.js) for tests and drives its control port:
// publishing events, reading partition stats and injecting faults.
package eventhubsemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
)

// DepsScript installs what the emulator needs.
const DepsScript = "scripts/deps/node.sh"

// Options configure a started emulator.
type Options struct {
	Hub        string // event hub name; "hub" when empty
	Partitions int    // partition count; 4 when zero
	// ConsumerGroups are the hub's consumer groups besides $Default.
	// Receivers on any other group are refused with amqp:not-found.
	ConsumerGroups []string
	// SASKey, when set, is the only shared access key whose tokens the
	// emulator accepts (others get status 401); any key is accepted when
	// it is empty.
	SASKey string
}

// Emulator is a running emulator process.
type Emulator struct {
	Hub         string
	Partitions  int
	AMQPPort    int
	ControlPort int
	sasKey      string

	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	done   chan struct{}
	http   *http.Client
}

// Event is where a published event landed.
type Event struct {
	SequenceNumber int64  `json:"sequence_number"`
	Offset         string `json:"offset"`
}

// PartitionStats is the emulator's view of one partition.
type PartitionStats struct {
	ID                 string     `json:"id"`
	Count              int64      `json:"count"`
	LastSequenceNumber int64      `json:"last_sequence_number"`
	LastOffset         string     `json:"last_offset"`
	Consumers          []Consumer `json:"consumers"`
}

// Consumer is one attached receiver link.
type Consumer struct {
	Group              string `json:"group"`
	Epoch              *int64 `json:"epoch"`
	NextSequenceNumber int64  `json:"next_sequence_number"`
}

// Dir returns the emulator's directory (test/eventhubs-emulator of the
// module this test runs in).
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("eventhubs emulator: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "test", "eventhubs-emulator"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("eventhubs emulator: no go.mod above %s", wd)
		}
	}
}

// Missing stops the test because a server dependency is absent: a failure
// when CI=true or SSPR_REQUIRE_SERVERS=1, a skip otherwise.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" || os.Getenv("SSPR_REQUIRE_SERVERS") == "1" {
		t.Fatalf("%s (run %s)", reason, DepsScript)
	}
	t.Skipf("%s: run %s to install it", reason, DepsScript)
}

// Start runs a new emulator on free loopback ports and stops it when the test ends.
func Start(t testing.TB, opts Options) *Emulator {
	t.Helper()
	if opts.Hub == "" {
		opts.Hub = "hub"
	}
	if opts.Partitions == 0 {
		opts.Partitions = 4
	}
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "rhea")); err != nil {
		Missing(t, "the npm package rhea is not installed in "+dir)
	}

	args := []string{"emulator.js", "--host", "127.0.0.1", "--hub", opts.Hub, "--partitions", strconv.Itoa(opts.Partitions)}
	if len(opts.ConsumerGroups) > 0 {
		args = append(args, "--consumer-groups", strings.Join(opts.ConsumerGroups, ","))
	}
	if opts.SASKey != "" {
		args = append(args, "--sas-key", opts.SASKey)
	}
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("eventhubs emulator: %v", err)
	}
	e := &Emulator{Hub: opts.Hub, Partitions: opts.Partitions, sasKey: opts.SASKey, cmd: cmd, stderr: &syncbuf.Buffer{},
		done: make(chan struct{}), http: &http.Client{Timeout: 30 * time.Second}}
	cmd.Stderr = e.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("eventhubs emulator: start node: %v", err)
	}
	go func() {
		_ = cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(e.Stop)

	type ready struct {
		AMQPPort    int `json:"amqp_port"`
		ControlPort int `json:"control_port"`
	}
	readyCh := make(chan ready, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var r ready
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.AMQPPort != 0 {
				readyCh <- r
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case r := <-readyCh:
		e.AMQPPort, e.ControlPort = r.AMQPPort, r.ControlPort
	case <-e.done:
		t.Fatalf("eventhubs emulator exited before it was ready: %s", e.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("eventhubs emulator not ready after 60s: %s", e.stderr.String())
	}
	return e
}

// Stop kills the emulator process and waits for it to exit.
func (e *Emulator) Stop() {
	select {
	case <-e.done:
		return
	default:
	}
	_ = e.cmd.Process.Kill()
	<-e.done
}

// Namespace is the fully qualified namespace, host:port, as the SDK and the
// checkpoint store see it.
func (e *Emulator) Namespace() string {
	return "127.0.0.1:" + strconv.Itoa(e.AMQPPort)
}

// ConnectionString is a namespace connection string for the SDK: plain AMQP,
// no TLS, SASL ANONYMOUS, with the emulator's key (Options.SASKey).
func (e *Emulator) ConnectionString() string {
	key := e.sasKey
	if key == "" {
		key = "ZW11bGF0b3I="
	}
	return e.ConnectionStringWithKey(key)
}

// ConnectionStringWithKey is ConnectionString with another shared access key.
func (e *Emulator) ConnectionStringWithKey(key string) string {
	return "Endpoint=sb://" + e.Namespace() + ";SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=" + key + ";UseDevelopmentEmulator=true"
}

// Publish appends bodies, in order, to a partition.
func (e *Emulator) Publish(partition string, bodies ...[]byte) ([]Event, error) {
	var req []byte
	path := "/publish-batch"
	if len(bodies) == 1 {
		path, req = "/publish", bodies[0]
	} else {
		enc := make([]string, len(bodies))
		for i, b := range bodies {
			enc[i] = base64.StdEncoding.EncodeToString(b)
		}
		var err error
		if req, err = json.Marshal(map[string][]string{"bodies": enc}); err != nil {
			return nil, fmt.Errorf("eventhubs emulator publish: %w", err)
		}
	}
	var out struct {
		Events []Event `json:"events"`
	}
	if err := e.call(http.MethodPost, path+"?partition="+url.QueryEscape(partition), req, &out); err != nil {
		return nil, fmt.Errorf("eventhubs emulator publish: %w", err)
	}
	return out.Events, nil
}

// Stats returns every partition's stats.
func (e *Emulator) Stats() ([]PartitionStats, error) {
	var out struct {
		Partitions []PartitionStats `json:"partitions"`
	}
	if err := e.call(http.MethodGet, "/partitions", nil, &out); err != nil {
		return nil, fmt.Errorf("eventhubs emulator stats: %w", err)
	}
	return out.Partitions, nil
}

// DropConnections closes every AMQP connection at once; clients may reconnect.
func (e *Emulator) DropConnections() error {
	if err := e.call(http.MethodPost, "/fault/drop-connections", nil, nil); err != nil {
		return fmt.Errorf("eventhubs emulator drop connections: %w", err)
	}
	return nil
}

// RefuseConnections drops every AMQP connection and refuses new ones for d
// (whole seconds, at least one).
func (e *Emulator) RefuseConnections(d time.Duration) error {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	if err := e.call(http.MethodPost, "/fault/refuse?seconds="+strconv.Itoa(secs), nil, nil); err != nil {
		return fmt.Errorf("eventhubs emulator refuse connections: %w", err)
	}
	return nil
}

func (e *Emulator) call(method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(context.Background(), method,
		"http://127.0.0.1:"+strconv.Itoa(e.ControlPort)+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status + ": " + strings.TrimSpace(string(data)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
