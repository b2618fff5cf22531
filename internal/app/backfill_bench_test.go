package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill/coverage"
	"github.com/sspr-exporter/sspr-exporter/internal/source/archive"
	"github.com/sspr-exporter/sspr-exporter/internal/source/archive/archivetest"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

func benchEnv(b *testing.B, name string, def int) int {
	b.Helper()
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive integer", name, v)
		}
		return n
	}
	return def
}

// BenchmarkBackfillArchive backfills a month of generated archives of one
// tenant (SSPR_BENCH_USERS users' traffic, 2 audit records per user and
// day, 2% of them SSPR events) through the whole command, from Azurite or,
// with SSPR_BENCH_STORAGE=double, from an in-memory Blob double that is
// not the bottleneck a storage emulator is; into a file output
// (/dev/null), or into a real Elasticsearch 8.19 node with SSPR_BENCH_ES=1.
// It reports records and events per second; run with -cpuprofile to see
// where the time goes.
func BenchmarkBackfillArchive(b *testing.B) {
	users := benchEnv(b, "SSPR_BENCH_USERS", 2000)
	days := benchEnv(b, "SSPR_BENCH_DAYS", 30)
	ctx := context.Background()
	day0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -days-1)
	a, err := archivetest.Generate(archivetest.Options{Tenant: "50a74cff-026f-4c84-aa8f-f5f8d837115f", From: day0, Hours: days * 24, Users: users, SSPRShare: 0.02, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var conn string
	if os.Getenv("SSPR_BENCH_STORAGE") == "double" {
		d := archivetest.NewServer(b)
		d.Put(archive.DefaultContainer, a)
		conn = d.ConnectionString()
	} else {
		srv := azurite.Start(b)
		conn = srv.ConnectionString()
		cc, err := container.NewClientFromConnectionString(conn, archive.DefaultContainer, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Upload(ctx, cc); err != nil {
			b.Fatal(err)
		}
	}
	size := 0
	for _, bl := range a.Blobs {
		size += len(bl.Data)
	}
	b.Logf("archive: %d blobs, %d records (%d MB), %d SSPR events", len(a.Blobs), a.Records, size>>20, len(a.SSPRIDs))
	output := benchOutput(b)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("%s\n[dead_letter]\npath = %q\n[log]\nlevel = \"warn\"\n[telemetry]\naddress = \"\"\n[backfill.blob]\nconnection_string = %q\nworkers = %d\n",
		output, filepath.Join(dir, "dl.ndjson"), conn, benchEnv(b, "SSPR_BENCH_WORKERS", 4))), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var elapsed time.Duration
	for i := range b.N {
		report := filepath.Join(dir, fmt.Sprintf("report-%d.json", i))
		start := time.Now()
		code, _, stderr := runBackfillCmd("blob", "--config", cfg, "--from", day0.Format(time.DateOnly), "--to", day0.AddDate(0, 0, days-1).Format(time.DateOnly),
			"--state", filepath.Join(dir, fmt.Sprintf("state-%d.json", i)), "--report", report, "--progress", "off")
		elapsed += time.Since(start)
		if code != 0 {
			b.Fatalf("exit %d: %s", code, stderr)
		}
		var rep coverage.Report
		data, _ := os.ReadFile(report)
		if err := json.Unmarshal(data, &rep); err != nil || rep.Tenants[0].Records != int64(a.Records) || rep.Tenants[0].SSPRDocuments != int64(len(a.SSPRIDs)) {
			b.Fatalf("report %s: %v", data, err)
		}
	}
	b.StopTimer()
	// How fast the storage alone serves the same blobs, read whole with as
	// many workers and nothing done with them: the backfill cannot go faster.
	rawStart := time.Now()
	raw, err := readAll(ctx, conn, a, benchEnv(b, "SSPR_BENCH_WORKERS", 4))
	if err != nil || raw != size {
		b.Fatalf("raw read: %d of %d bytes: %v", raw, size, err)
	}
	b.ReportMetric(float64(size)/time.Since(rawStart).Seconds()/(1<<20), "storage-MB/s")
	secs := elapsed.Seconds()
	b.ReportMetric(float64(b.N*a.Records)/secs, "records/s")
	b.ReportMetric(float64(b.N*len(a.SSPRIDs))/secs, "events/s")
	b.ReportMetric(float64(b.N*size)/secs/(1<<20), "MB/s")
}

// benchOutput is the output section: /dev/null, or with SSPR_BENCH_ES=1
// a real Elasticsearch 8.19 node of the benchmark's own.
func benchOutput(b *testing.B) string {
	b.Helper()
	if os.Getenv("SSPR_BENCH_ES") != "1" {
		return "[output.file]\npath = \"/dev/null\"\n"
	}
	node := searchnode.Start(b, searchnode.ES8, searchnode.Heap("1g"))
	return fmt.Sprintf("[output.file]\nenabled = false\n[output.elasticsearch]\nenabled = true\naddresses = [%q]\nskip_setup_check = true\n", node.URL())
}

// readAll downloads every blob of the archive with workers at once and
// returns the bytes read.
func readAll(ctx context.Context, conn string, a archivetest.Archive, workers int) (int, error) {
	cc, err := container.NewClientFromConnectionString(conn, archive.DefaultContainer, nil)
	if err != nil {
		return 0, err
	}
	names := make(chan string)
	var mu sync.Mutex
	total := 0
	var firstErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for n := range names {
				resp, err := cc.NewBlobClient(n).DownloadStream(ctx, nil)
				if err == nil {
					var k int64
					k, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					total += int(k)
					mu.Unlock()
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for _, bl := range a.Blobs {
		names <- bl.Name
	}
	close(names)
	wg.Wait()
	return total, firstErr
}

// BenchmarkBackfillGraph backfills 30 days of generated Graph pages (the
// audit entries of SSPR_BENCH_USERS users' traffic, 20% of them SSPR
// events, 999 a page) from the Graph double, with no pause between
// requests, through the whole command into a file output (/dev/null) or,
// with SSPR_BENCH_ES=1, a real Elasticsearch 8.19 node. Against Graph
// itself request_interval (5 requests per 10 s) sets the pace instead.
func BenchmarkBackfillGraph(b *testing.B) {
	users := benchEnv(b, "SSPR_BENCH_USERS", 2000)
	s := graphapi.New(b)
	now := time.Now().UTC().Truncate(time.Hour)
	from, to := now.Add(-30*24*time.Hour), now.Add(-time.Hour)
	a, err := archivetest.Generate(archivetest.Options{Tenant: graphapi.TenantID, From: from, Hours: int(to.Sub(from) / time.Hour), Users: users, SSPRShare: 0.2, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	n, err := s.AddDiagnosticRecords(a.Lines()...)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("Graph holds %d audit entries, %d SSPR events", n, len(a.SSPRIDs))
	output := benchOutput(b)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("%s\n[dead_letter]\npath = %q\n[log]\nlevel = \"warn\"\n[telemetry]\naddress = \"\"\n%s", output, filepath.Join(dir, "dl.ndjson"), graphSection(b, s))), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		code, _, stderr := runBackfillCmd("graph", "--config", cfg, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
			"--state", filepath.Join(dir, fmt.Sprintf("state-%d.json", i)), "--progress", "off")
		if code != 0 {
			b.Fatalf("exit %d: %s", code, stderr)
		}
	}
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N*len(a.SSPRIDs))/secs, "events/s")
	b.ReportMetric(float64(len(s.Paths()))/secs, "requests/s")
}
