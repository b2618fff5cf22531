package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the command once for the tests that send it signals.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sspr-exporter-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sspr-exporter")
		if out, err := osexec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = errors.New("build: " + err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// start runs the command with args, its stderr collected; the test's end
// kills it if it still runs.
func start(t *testing.T, bin string, args ...string) (*osexec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	cmd := osexec.Command(bin, args...)
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, stderr
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplayInterruptedExitsBySignal: an interrupted replay is not a
// complete one: it exits 128+signal and its summary says so.
func TestReplayInterruptedExitsBySignal(t *testing.T) {
	bin := binary(t)
	// Far more output than a pipe holds: replay cannot finish while the
	// test does not read its stdout.
	var in bytes.Buffer
	for i := range 40000 {
		in.WriteString(rec("r"+string(rune('a'+i%26))) + "\n")
	}
	input := write(t, "big.json", in.String())
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			cmd := osexec.Command(bin, "replay", input)
			var stderr syncbuf.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			br := bufio.NewReader(stdout)
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatalf("no output: %v; stderr %s", err, stderr.String())
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(br)
			err = cmd.Wait()
			var ee *osexec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit after %s: %v, want status %d; stderr %s", tc.sig, err, tc.code, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			var sum map[string]any
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
				t.Fatalf("last stderr line is not a summary: %q", stderr.String())
			}
			if sum["interrupted"] != true {
				t.Errorf("summary %v: want \"interrupted\": true", sum)
			}
			docs := 1 + strings.Count(string(rest), "\n")
			if docs >= 40000 || sum["sspr"].(float64) != float64(docs) {
				t.Errorf("%d documents written, summary %v", docs, sum)
			}
		})
	}
}

// TestRunSIGTERMWithUndeliveredWork: when the grace period runs out with
// batches the outputs did not take, run says so in one line and exits 1.
func TestRunSIGTERMWithUndeliveredWork(t *testing.T) {
	bin := binary(t)
	es := esdouble.New()
	defer es.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(in, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := write(t, "c.toml", `
[input.file]
paths = ["`+in+`"]
follow = true
poll_interval = "20ms"
[output.file]
enabled = false
[output.elasticsearch]
enabled = true
addresses = ["`+es.URL()+`"]
setup_on_start = true
[pipeline]
shutdown_grace = "300ms"
[log]
level = "info"
format = "json"
[telemetry]
address = ""
`)
	cmd, stderr := start(t, bin, "run", "--config", cfg)
	waitUntil(t, "the exporter to start", time.Minute, func() bool { return strings.Contains(stderr.String(), "exporter started") })
	es.SetDown(true)
	before := es.Stats().Requests
	if err := os.WriteFile(in, []byte(rec("1")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a bulk request", time.Minute, func() bool { return es.Stats().Requests > before || strings.Contains(stderr.String(), "retry") })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *osexec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit after SIGTERM with undelivered work: %v, want status 1; stderr %s", err, stderr.String())
	}
	logs := stderr.String()
	if strings.Contains(logs, "context canceled") {
		t.Errorf("\"context canceled\" in the output:\n%s", logs)
	}
	var found int
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "not delivered") && strings.Contains(l, `"batches":1`) && strings.Contains(l, "read again") {
			found++
		}
	}
	if found != 1 {
		t.Errorf("want one line saying 1 batch was not delivered and will be read again:\n%s", logs)
	}
}
