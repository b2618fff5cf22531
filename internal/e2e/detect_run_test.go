package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// TestRunEvaluatesOnSchedule runs the exporter with detection on: it
// stores a password spray in Elasticsearch, the scheduled evaluation reads
// it back and raises one alert, and the evaluations after it, which see
// the same window again, send nothing more.
func TestRunEvaluatesOnSchedule(t *testing.T) {
	node := searchnode.Start(t, searchnode.ES8)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shipped, err := elasticsearch.Assets(elasticsearch.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	assets, err := bulktest.NodeAssets(shipped)
	if err != nil {
		t.Fatal(err)
	}
	ad := bulk.Admin{Name: elasticsearch.Name, Client: bulktest.HTTPClient(node.URL()), Red: secret.NewRedactor()}
	if _, err := ad.Install(ctx, assets, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	// The rules read stored documents, so the spray is stored as ECS
	// documents directly; the pipeline's input stays empty.
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	var body bytes.Buffer
	for i := range 6 {
		e := ecs.Event{Event: ecs.EventMeta{ID: fmt.Sprintf("run-spray-%d", i), Action: "password-reset", Outcome: "failure", Kind: "event", Dataset: ecs.Dataset, Category: []string{"iam"}, Type: []string{"change"}}}
		e.ECS.Version, e.Time = ecs.Version, hour.Add(time.Duration(i)*time.Minute)
		e.Timestamp = e.Time.Format(time.RFC3339Nano)
		e.User.Target.Name, e.Source.IP = fmt.Sprintf("u%d@contoso.example", i), "192.0.2.7"
		fmt.Fprintf(&body, `{"create":{"_index":%q,"_id":%q}}`+"\n", "entra-sspr-"+e.Time.Format("2006.01"), e.Event.ID)
		body.Write(e.AppendJSON(nil))
		body.WriteByte('\n')
	}
	res, err := bulktest.HTTPClient(node.URL()).Do(ctx, bulk.Request{Method: "POST", Path: "/_bulk?refresh=true", Body: body.Bytes()})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("bulk: %v %v", res, err)
	}
	res.Body.Close()

	alertsFile := filepath.Join(dir, "alerts.ndjson")
	empty := filepath.Join(dir, "in.json")
	os.WriteFile(empty, nil, 0o600)
	cfg := filepath.Join(dir, "run.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[input]
type = "file"
[input.file]
paths = [%s]
follow = true
`, tomlStr(empty))+esSection(node, "entra-sspr")+fmt.Sprintf(`
[detect]
enabled = true
interval = "1s"
[detect.output]
index = true
file = %s
`, tomlStr(alertsFile))), 0o600)
	logPath := filepath.Join(dir, "run.log")
	logf, _ := os.Create(logPath)
	defer logf.Close()
	cmd := exec.Command(exporterBin, "run", "--config", cfg)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	// Wait for three evaluations that found nothing new after the one
	// that raised the alert.
	for {
		logs, _ := os.ReadFile(logPath)
		raised := strings.Count(string(logs), `"new_alerts":1`)
		after := strings.Count(string(logs[max(bytes.Index(logs, []byte(`"new_alerts":1`)), 0):]), `"new_alerts":0`)
		if raised >= 1 && after >= 3 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("run exited: %v\n%s", err, logs)
		case <-ctx.Done():
			t.Fatalf("no alert raised and evaluated again in time:\n%s", logs)
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		logs, _ := os.ReadFile(logPath)
		t.Fatalf("run: %v\n%s", err, logs)
	}
	data, _ := os.ReadFile(alertsFile)
	if n := bytes.Count(data, []byte("\n")); n != 1 || !bytes.Contains(data, []byte(`"sspr-spray-ip"`)) {
		t.Errorf("alerts file holds %d lines, want the one spray alert:\n%s", n, data)
	}
	count, _ := es{t, node.URL()}.ids("entra-sspr-alerts-*", 1)
	if count != 1 {
		t.Errorf("%d alerts in the index, want 1", count)
	}
}
