package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/app"
	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

const reset = `{"time":"2026-11-02T08:00:08Z","category":"AuditLogs","tenantId":"50a74cff-026f-4c84-aa8f-f5f8d837115f","properties":{"id":"ID","result":"failure","resultReason":"FuzzyPolicyViolationInvalidPassword","activityDisplayName":"Reset password (self-service)","activityDateTime":"2026-11-02T08:00:08.5+00:00","loggedByService":"Self-service Password Management","initiatedBy":{"user":{"id":"u1","userPrincipalName":"a@contoso.example","ipAddress":"203.0.113.7"}},"targetResources":[{"id":"u1","type":"User","userPrincipalName":"a@contoso.example"}]}}`

func rec(id string) string { return strings.Replace(reset, `"id":"ID"`, `"id":"`+id+`"`, 1) }

type result struct {
	code           int
	stdout, stderr string
}

func exec(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, app.Std{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return result{code, out.String(), errb.String()}
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ids(t *testing.T, ndjson string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		if line == "" {
			continue
		}
		var d struct {
			Event struct{ ID string } `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("output line is not JSON: %q", line)
		}
		out = append(out, d.Event.ID)
	}
	return out
}

// summary returns the last stderr line decoded.
func summary(t *testing.T, stderr string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last stderr line is not a JSON summary: %q", stderr)
	}
	return m
}

func TestReplayKeepsInputOrderAcrossFiles(t *testing.T) {
	a := write(t, "a.json", `{"records":[`+rec("1")+`,`+rec("2")+`]}`+"\n"+rec("3")+"\n")
	b := write(t, "b.json", "[\n"+rec("4")+",\n"+rec("5")+"\n]\n")
	r := exec(t, "", "replay", a, b)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := strings.Join(ids(t, r.stdout), ","); got != "1,2,3,4,5" {
		t.Errorf("order %q", got)
	}
	s := summary(t, r.stderr)
	for k, want := range map[string]float64{"records": 5, "sspr": 5, "dropped": 0, "dead_lettered": 0} {
		if s[k] != want {
			t.Errorf("summary %s = %v, want %v", k, s[k], want)
		}
	}
	if s["by_action"].(map[string]any)["password-reset"] != 5.0 || s["by_outcome"].(map[string]any)["failure"] != 5.0 {
		t.Errorf("summary %v", s)
	}
}

func TestReplayStdinAndDeadLetters(t *testing.T) {
	dl := filepath.Join(t.TempDir(), "dl.ndjson")
	in := `{"records":[` + rec("1") + `, "oops"]}` + "\n" + `{"records":[{"broken"` + "\n" + rec("2") + "\n"
	r := exec(t, in, "replay", "--dead-letter", dl, "-")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := strings.Join(ids(t, r.stdout), ","); got != "1,2" {
		t.Errorf("ids %q", got)
	}
	data, err := os.ReadFile(dl)
	if err != nil {
		t.Fatal(err)
	}
	var lines []deadletter.Record
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		d, ok := deadletter.Parse([]byte(l))
		if !ok {
			t.Fatalf("bad dead-letter line %q", l)
		}
		lines = append(lines, d)
	}
	if len(lines) != 2 || lines[0].Source.Kind != "stdin" || lines[0].Source.Line != 1 || lines[1].Source.Line != 2 {
		t.Fatalf("dead letters %+v", lines)
	}
	if *lines[1].Raw != `{"records":[{"broken"` {
		t.Errorf("raw %q", *lines[1].Raw)
	}
	// Re-driving the dead letters: the non-object record fails again, at
	// its original position.
	r = exec(t, "", "replay", dl)
	if r.code != 0 || summary(t, r.stderr)["dead_lettered"] != 2.0 {
		t.Errorf("re-drive: exit %d %s", r.code, r.stderr)
	}
}

func TestReplayUsageErrors(t *testing.T) {
	good := write(t, "good.json", rec("1"))
	type usageCase struct {
		name string
		args []string
		want string
	}
	cases := []usageCase{
		{"missing file checked before reading", []string{"replay", good, "/nonexistent/x.json"}, "no such file"},
		{"empty glob", []string{"replay", filepath.Join(t.TempDir(), "*.json")}, "no file matches"},
		{"bad flag", []string{"replay", "--nope"}, "flag provided but not defined"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"run without config", []string{"run"}, "--config FILE is required"},
		{"missing config", []string{"run", "--config", "/nonexistent.toml"}, "no such file"},
		{"negative max body", []string{"replay", "--max-body-bytes", "-1", good}, "--max-body-bytes"},
		{"dead letter in a missing directory", []string{"replay", "--dead-letter", "/nonexistent/dir/dl.ndjson", good}, "--dead-letter"},
		{"dead letter is a directory", []string{"replay", "--dead-letter", t.TempDir(), good}, "--dead-letter"},
		{"flag after a file still parsed", []string{"replay", good, "--nope"}, "flag provided but not defined"},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		readOnly := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(readOnly, 0o555); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, usageCase{"dead letter not writable", []string{"replay", "--dead-letter", filepath.Join(readOnly, "dl.ndjson"), good}, "--dead-letter"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := exec(t, "", tc.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2", r.code)
			}
			if r.stdout != "" {
				t.Errorf("wrote to stdout: %q", r.stdout)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 2 || !strings.Contains(lines[0], tc.want) || !strings.Contains(lines[1], "--help") {
				t.Errorf("stderr %q: want one line with %q and a --help hint", r.stderr, tc.want)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	if r := exec(t, "", "replay", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage: sspr-exporter replay") {
		t.Errorf("replay --help: %d %q", r.code, r.stdout)
	}
	if r := exec(t, "", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "sspr-exporter ") {
		t.Errorf("version: %d %q", r.code, r.stdout)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	cfg := write(t, "bad.toml", `
[input]
type = "carrier-pigeon"
[decode]
max_body_bytes = -1
[log]
level = "loud"
[nonsense]
x = 1
`)
	r := exec(t, "", "validate", "--config", cfg)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	for _, key := range []string{"input.type", "decode.max_body_bytes", "log.level", "nonsense"} {
		if !strings.Contains(r.stdout, key) {
			t.Errorf("validate output lacks %s:\n%s", key, r.stdout)
		}
	}
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n") + 1; n < 4 {
		t.Errorf("%d lines, want one per problem:\n%s", n, r.stdout)
	}
	if r := exec(t, "", "validate", "--config", "../../config.example.toml"); r.code != 0 {
		t.Errorf("config.example.toml does not validate: %s%s", r.stdout, r.stderr)
	}
}

func TestRunWritesConfiguredOutputs(t *testing.T) {
	dir := t.TempDir()
	in := write(t, "in.json", `{"records":[`+rec("1")+`,`+rec("2")+`]}`+"\nnot json\n")
	out, dl := filepath.Join(dir, "out.ndjson"), filepath.Join(dir, "dl.ndjson")
	cfg := write(t, "c.toml", `
[input.file]
paths = ["`+in+`"]
[output.file]
path = "`+out+`"
[dead_letter]
path = "`+dl+`"
[log]
level = "error"
[telemetry]
address = "127.0.0.1:0"
`)
	r := exec(t, "", "run", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	data, _ := os.ReadFile(out)
	if got := strings.Join(ids(t, string(data)), ","); got != "1,2" {
		t.Errorf("output ids %q", got)
	}
	dls, _ := os.ReadFile(dl)
	if d, ok := deadletter.Parse(bytes.TrimSpace(dls)); !ok || d.Source.File != in || d.Source.Line != 2 {
		t.Errorf("dead letters %q", dls)
	}
}

// TestRunFollowStopsCleanlyOnSIGTERM runs the real binary: it follows a
// file that grows, then SIGTERM makes it finish its work and exit 0.
func TestRunFollowStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(in, []byte(rec("1")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.ndjson")
	cfg := write(t, "c.toml", `
[input.file]
paths = ["`+in+`"]
follow = true
poll_interval = "20ms"
[output.file]
path = "`+out+`"
[log]
level = "error"
[telemetry]
address = ""
`)
	cmd, stderr := start(t, bin, "run", "--config", cfg)
	waitFor := func(n int) {
		t.Helper()
		for i := 0; i < 1000; i++ {
			data, _ := os.ReadFile(out)
			if strings.Count(string(data), "\n") >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("output never reached %d lines; stderr: %s", n, stderr.String())
	}
	waitFor(1)
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `{"records":[`+rec("2")+`]}`)
	f.Close()
	waitFor(2)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	data, _ := os.ReadFile(out)
	if got := strings.Join(ids(t, string(data)), ","); got != "1,2" {
		t.Errorf("ids %q", got)
	}
}

// TestElasticsearchSetupCheckRun goes through an operator's first day with
// Elasticsearch: check fails and says to run setup, setup installs, a second
// setup changes nothing, check passes, run stores each event once however
// often it is replayed.
func TestElasticsearchSetupCheckRun(t *testing.T) {
	es := esdouble.New()
	defer es.Close()
	in := write(t, "in.json", `{"records":[`+rec("1")+`,`+rec("2")+`]}`)
	cfg := write(t, "c.toml", `
[input.file]
paths = ["`+in+`"]
[output.file]
enabled = false
[output.elasticsearch]
enabled = true
addresses = ["`+es.URL()+`"]
api_key = "CHECK-SECRET-KEY"
[log]
level = "error"
[telemetry]
address = ""
`)
	r := exec(t, "", "check", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL output.elasticsearch") || !strings.Contains(r.stdout, "setup") {
		t.Fatalf("check before setup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// run before setup does not exit: it says what to do, waits, and goes
	// on by itself once setup has installed the templates.
	var waitLog syncbuf.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"run", "--config", cfg}, app.Std{In: strings.NewReader(""), Out: &syncbuf.Buffer{}, Err: &waitLog})
	}()
	for !strings.Contains(waitLog.String(), "sspr-exporter setup") {
		select {
		case code := <-exited:
			t.Fatalf("run before setup exited (status %d) instead of waiting: %s", code, waitLog.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n := es.Count("entra-sspr-*"); n != 0 {
		t.Errorf("%d documents stored before setup", n)
	}
	if r := exec(t, "", "setup", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "installed") {
		t.Fatalf("setup: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("run that waited for setup: exit %d; stderr: %s", code, waitLog.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("run did not go on after setup; stderr: %s", waitLog.String())
	}
	if strings.Contains(waitLog.String(), "CHECK-SECRET-KEY") {
		t.Errorf("secret printed while waiting: %s", waitLog.String())
	}
	if r := exec(t, "", "setup", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "up to date") {
		t.Errorf("second setup: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := exec(t, "", "check", "--config", cfg); r.code != 0 || strings.Contains(r.stdout, "FAIL") {
		t.Errorf("check after setup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for range 2 {
		if r := exec(t, "", "run", "--config", cfg); r.code != 0 {
			t.Fatalf("run: exit %d %s", r.code, r.stderr)
		}
	}
	if n := es.Count("entra-sspr-*"); n != 2 {
		t.Errorf("%d documents after two runs, want 2", n)
	}
	if got := es.IDs("entra-sspr-2026.11.01"); strings.Join(got, ",") != "1,2" {
		t.Errorf("ids in the November index: %v (indices %v)", got, es.Indices())
	}
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.Contains(out, "CHECK-SECRET-KEY") {
			t.Errorf("secret printed: %s", out)
		}
	}
}
