package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/telemetrytest"
)

const ssprReset = `{"time":"2026-11-02T08:00:08Z","category":"AuditLogs","tenantId":"50a74cff-026f-4c84-aa8f-f5f8d837115f","properties":{"id":"ID","result":"RESULT","activityDisplayName":"Reset password (self-service)","activityDateTime":"2026-11-02T08:00:08.5+00:00","loggedByService":"Self-service Password Management","initiatedBy":{"user":{"id":"u1","userPrincipalName":"a@contoso.example"}},"targetResources":[{"id":"u1","type":"User","userPrincipalName":"a@contoso.example"}]}}`

const notSSPR = `{"time":"2026-11-02T08:00:08Z","category":"AuditLogs","properties":{"id":"ID","activityDisplayName":"Update user","loggedByService":"Core Directory"}}`

func reset(id, result string) string {
	return strings.NewReplacer(`"id":"ID"`, `"id":"`+id+`"`, `"RESULT"`, `"`+result+`"`).Replace(ssprReset)
}

func other(id string) string { return strings.Replace(notSSPR, `"id":"ID"`, `"id":"`+id+`"`, 1) }

// TestRunMetricsCountEachRecordOnce runs the service as configured, with a
// file input of known content, and checks /metrics against that content.
func TestRunMetricsCountEachRecordOnce(t *testing.T) {
	dir := t.TempDir()
	noTime := strings.Replace(strings.Replace(reset("nt", "success"), `"time":"2026-11-02T08:00:08Z",`, "", 1), `"activityDateTime":"2026-11-02T08:00:08.5+00:00",`, "", 1)
	lines := []string{
		`{"records":[` + reset("s1", "success") + `,` + other("o1") + `,` + other("o2") + `,"not an object"]}`,
		reset("f1", "failure"),
		`{"records":[` + reset("s2", "success") + `,` + other("o3") + `]}`,
		`{"records":{"not":"an array"}}`,
		"not json at all",
		noTime,
	}
	// 9 records: 3 SSPR documents, 3 dropped, 3 dead-lettered (not an
	// object, broken envelope, no time); the line that is not JSON holds
	// no record and is a fourth dead letter.
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(cfg, []byte(`
[input.file]
paths = ["`+in+`"]
follow = true
poll_interval = "20ms"
[output.file]
path = "`+filepath.Join(dir, "out.ndjson")+`"
[dead_letter]
path = "`+filepath.Join(dir, "dl.ndjson")+`"
[log]
level = "info"
format = "json"
[telemetry]
address = "127.0.0.1:0"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--config", cfg}, Std{In: strings.NewReader(""), Out: &syncbuf.Buffer{}, Err: &logs})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	var addr string
	deadline := time.Now().Add(time.Minute)
	for addr == "" {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "telemetry endpoints listening" {
				addr, _ = m["address"].(string)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("telemetry never listened: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var mfs telemetrytest.Metrics
	for {
		mfs = telemetrytest.Scrape(t, addr)
		if mfs.Value("sspr_exporter_records_total", nil) >= 9 && mfs.Value("sspr_exporter_dead_letters_total", map[string]string{"stage": "decode", "reason": "invalid_json"}) >= 1 && mfs.Value("sspr_exporter_batches_in_flight", nil) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("input never fully counted; logs: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	mfs = telemetrytest.Scrape(t, addr) // a second scrape must not add anything
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sspr_exporter_records_total", nil, 9},
		{"sspr_exporter_documents_total", map[string]string{"action": "password-reset"}, 3},
		{"sspr_exporter_documents_by_outcome_total", map[string]string{"outcome": "success"}, 2},
		{"sspr_exporter_documents_by_outcome_total", map[string]string{"outcome": "failure"}, 1},
		{"sspr_exporter_records_dropped_total", map[string]string{"reason": "not_sspr"}, 3},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "decode", "reason": "not_object"}, 1},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "decode", "reason": "bad_envelope"}, 1},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "decode", "reason": "invalid_json"}, 1},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "normalize", "reason": "no_time"}, 1},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "decode", "reason": "other"}, 0},
	} {
		if got := mfs.Value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestReplayStopsOnSignalWhileStdinIsSilent: a signal ends a replay whose
// standard input sends nothing more, with the signal's status and a
// summary that says it was interrupted.
func TestReplayStopsOnSignalWhileStdinIsSilent(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	var stderr, stdout syncbuf.Buffer
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- Replay(ctx, nil, Std{In: pr, Out: &stdout, Err: &stderr}) }()
	if _, err := pw.Write([]byte(reset("1", "success") + "\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stdout.String(), `"id":"1"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no document; stderr %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel(&Interrupt{Signal: syscall.SIGTERM})
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("replay did not stop while its stdin was silent")
	}
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 143 {
		t.Fatalf("replay returned %v, want exit status 143", err)
	}
	var sum map[string]any
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if json.Unmarshal([]byte(lines[len(lines)-1]), &sum) != nil || sum["interrupted"] != true || sum["sspr"] != 1.0 {
		t.Errorf("summary %q", stderr.String())
	}
}
