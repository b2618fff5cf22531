package searchnode

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestEngines runs each engine for real: the root endpoint as clients
// check it, a composable template (best_compression, which needs native
// zstd on Elasticsearch 9), bulk create twice (201, then 409 per
// item), refresh and count, 413 over http.max_content_length, a
// whole-request 429 from indexing pressure (Elasticsearch), and a kill -9
// followed by a restart on the same port that keeps the documents.
func TestEngines(t *testing.T) {
	for _, e := range Engines() {
		t.Run(e.spec().module, func(t *testing.T) {
			opts := []Option{Setting("http.max_content_length", "1mb")}
			if e.Elasticsearch() {
				opts = append(opts, Setting("indexing_pressure.memory.limit", "64kb"))
			}
			n := Start(t, e, opts...)
			logMemory(t, n)

			checkRoot(t, n)
			putTemplate(t, n)
			docs := []string{"a", "b", "c"}
			if got := bulkCreate(t, n, "sspr-test-1", docs, 0); !allStatus(got, http.StatusCreated) {
				t.Fatalf("first bulk create: item statuses %v, want 201 each", got)
			}
			if got := bulkCreate(t, n, "sspr-test-1", docs, 0); !allStatus(got, http.StatusConflict) {
				t.Fatalf("second bulk create of the same ids: item statuses %v, want 409 each", got)
			}
			if got := count(t, n, "sspr-test-1"); got != len(docs) {
				t.Fatalf("count after refresh = %d, want %d", got, len(docs))
			}

			// 1.5 MB, over the 1mb limit the node was given. The node answers
			// 413 and closes the connection, possibly while the body is still
			// being sent: the client then sees its write fail instead.
			if status, err := tryCall(n, http.MethodPost, "/_bulk", bulkBody("sspr-test-1", manyIDs(1500), 1000)); status != http.StatusRequestEntityTooLarge &&
				!errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("body over http.max_content_length: status %d (%v), want 413 or the connection closed while sending", status, err)
			}
			if e.Elasticsearch() {
				// About 700 KB: under the HTTP limit, far over the 64kb of
				// indexing pressure the node was given.
				status, body := call(t, n, http.MethodPost, "/_bulk", bulkBody("sspr-test-2", manyIDs(700), 1000))
				if status != http.StatusTooManyRequests {
					t.Errorf("bulk over indexing_pressure.memory.limit: status %d, want 429 for the whole request: %.300s", status, body)
				}
			}

			logMemory(t, n)

			port := n.Port()
			if err := n.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := n.Restart(); err != nil {
				t.Fatalf("restart after kill -9: %v\n%s", err, n.LogTail(8000))
			}
			t.Logf("%s restarted after kill -9 in %v", e, n.StartTime())
			if n.Port() != port {
				t.Errorf("restart bound port %d, want the first start's %d", n.Port(), port)
			}
			if got := count(t, n, "sspr-test-1"); got != len(docs) {
				t.Errorf("count after kill -9 and restart = %d, want %d", got, len(docs))
			}
		})
	}
}

// TestSharedOneAtATime checks that Shared hands every test the same node
// of an engine, keeps one node running at a time (an idle node of another
// engine is stopped), and brings a stopped one back on its port with its
// data.
func TestSharedOneAtATime(t *testing.T) {
	var es *Node
	var port int
	t.Run("first", func(t *testing.T) {
		es = Shared(t, ES8)
		if again := Shared(t, ES8); again != es {
			t.Fatal("second Shared call started another node")
		}
		if err := es.Kill(); err == nil {
			t.Error("Kill of a shared node succeeded")
		}
		port = es.Port()
		putTemplate(t, es)
		if got := bulkCreate(t, es, "sspr-test-shared", []string{"x"}, 0); !allStatus(got, http.StatusCreated) {
			t.Fatalf("bulk create: item statuses %v", got)
		}
	})
	if es == nil {
		t.Skip("no shared node")
	}
	t.Run("other engine", func(t *testing.T) {
		os := Shared(t, OpenSearch2)
		if es.running() {
			t.Error("the idle shared Elasticsearch node still runs beside the OpenSearch one")
		}
		checkRoot(t, os)
	})
	t.Run("first again", func(t *testing.T) {
		if again := Shared(t, ES8); again != es {
			t.Fatal("Shared started a new node instead of restarting the stopped one")
		}
		if es.Port() != port {
			t.Errorf("shared node came back on port %d, want %d", es.Port(), port)
		}
		if got := count(t, es, "sspr-test-shared"); got != 1 {
			t.Errorf("count on the restarted shared node = %d, want 1", got)
		}
	})
}

// TestStartFailureSaysWhy checks that a node that cannot start is reported
// at once, with the engine's reason in its log, and leaves no process.
func TestStartFailureSaysWhy(t *testing.T) {
	inst, err := OpenSearch2.installation()
	if err != nil {
		unavailable(t, "search node unavailable: %v", err)
	}
	dir := t.TempDir()
	n := newNode(OpenSearch2, inst, filepath.Join(dir, "home"), filepath.Join(dir, "node.log"), []Option{Setting("no.such.setting", "x")})
	if err := n.start(); err == nil {
		_ = n.stop(syscall.SIGKILL)
		t.Fatal("a node with an unknown setting started")
	}
	if tail := n.LogTail(16000); !strings.Contains(tail, "unknown setting [no.such.setting]") {
		t.Errorf("log does not say why the node failed:\n%s", tail)
	}
	if n.running() || n.PID() != 0 {
		t.Error("a failed start left the node marked running")
	}
}

// TestNotInstalled checks that a missing installation names the script
// that installs it.
func TestNotInstalled(t *testing.T) {
	t.Setenv("SSPR_TEST_CACHE", t.TempDir())
	for _, e := range Engines() {
		if _, err := e.installation(); err == nil || !strings.Contains(err.Error(), DepsScript) {
			t.Errorf("%s in an empty cache: error %v, want one naming %s", e, err, DepsScript)
		}
	}
}

// TestRestartArgs checks that settings reach the launcher in order and
// that once a port is known every start binds it.
func TestRestartArgs(t *testing.T) {
	n := newNode(ES9, install{java: "java", classpath: "cp"}, "/h", "/l",
		[]Option{Setting("a.b", "1"), Setting("c", "x=y"), Heap("256m")})
	first := n.args()
	if !slices.Contains(first, "-Xmx256m") || !slices.Contains(first, "--enable-native-access=ALL-UNNAMED") {
		t.Errorf("JVM arguments %q lack the heap or Java 25's native access", first)
	}
	if i := slices.Index(first, "a.b=1"); i < 1 || first[i-1] != "-E" || first[i+2] != "c=x=y" {
		t.Errorf("settings not passed in order as -E key=value: %q", first)
	}
	if slices.ContainsFunc(first, func(a string) bool { return strings.HasPrefix(a, "http.port=") }) {
		t.Errorf("first start pins a port: %q", first)
	}
	n.port = 41234
	if again := n.args(); again[len(again)-2] != "-E" || again[len(again)-1] != "http.port=41234" {
		t.Errorf("restart arguments %q do not end with the first port", again)
	}
}

func checkRoot(t *testing.T, n *Node) {
	t.Helper()
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{n.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Engine().Elasticsearch() {
		checkOpenSearchRoot(t, n, es)
		return
	}
	res, err := es.Info()
	if err != nil {
		t.Fatalf("go-elasticsearch Info (product check): %v", err)
	}
	defer res.Body.Close()
	var info struct {
		Version struct{ Number string } `json:"version"`
	}
	if err := json.NewDecoder(res.Body).Decode(&info); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d, decode: %v", res.StatusCode, err)
	}
	if info.Version.Number != n.Engine().Version() {
		t.Errorf("GET / version %q, want %q", info.Version.Number, n.Engine().Version())
	}
	ping, err := es.Ping()
	if err != nil || ping.StatusCode != http.StatusOK {
		t.Fatalf("HEAD /: %v, %v", ping, err)
	}
	_ = ping.Body.Close()
}

// checkOpenSearchRoot checks GET / with net/http, and that go-elasticsearch
// refuses OpenSearch's answers yet has the request executed.
func checkOpenSearchRoot(t *testing.T, n *Node, es *elasticsearch.Client) {
	t.Helper()
	status, body := call(t, n, http.MethodGet, "/", "")
	var info struct {
		Version struct{ Distribution, Number string } `json:"version"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil || status != http.StatusOK {
		t.Fatalf("GET /: status %d, %v: %s", status, err, body)
	}
	if info.Version.Distribution != "opensearch" || info.Version.Number != n.Engine().Version() {
		t.Errorf("GET / version %+v, want opensearch %s", info.Version, n.Engine().Version())
	}
	if status, _ := call(t, n, http.MethodHead, "/", ""); status != http.StatusOK {
		t.Errorf("HEAD /: status %d", status)
	}
	res, err := es.Index("sspr-test-goes", strings.NewReader(`{"message":"m"}`), es.Index.WithDocumentID("1"), es.Index.WithRefresh("true"))
	if err == nil {
		_ = res.Body.Close()
		t.Fatal("go-elasticsearch accepted OpenSearch's answer")
	}
	if !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Errorf("go-elasticsearch against OpenSearch: %v", err)
	}
	if status, body := call(t, n, http.MethodGet, "/sspr-test-goes/_doc/1", ""); status != http.StatusOK {
		t.Errorf("document go-elasticsearch sent to OpenSearch: status %d: %s", status, body)
	}
}

func putTemplate(t *testing.T, n *Node) {
	t.Helper()
	const tmpl = `{"index_patterns":["sspr-test-*"],"template":{
		"settings":{"number_of_shards":1,"number_of_replicas":0,"index.codec":"best_compression"},
		"mappings":{"dynamic":"strict","properties":{"message":{"type":"keyword"},"pad":{"type":"keyword","index":false,"doc_values":false}}}}}`
	if status, body := call(t, n, http.MethodPut, "/_index_template/sspr-test", tmpl); status != http.StatusOK {
		t.Fatalf("put index template: status %d: %s", status, body)
	}
}

// bulkCreate sends one create per id and returns the item statuses.
func bulkCreate(t *testing.T, n *Node, index string, ids []string, pad int) []int {
	t.Helper()
	status, body := call(t, n, http.MethodPost, "/_bulk", bulkBody(index, ids, pad))
	if status != http.StatusOK {
		t.Fatalf("bulk: status %d: %.500s", status, body)
	}
	var res struct {
		Items []map[string]struct {
			Status int `json:"status"`
			Error  struct {
				Type string `json:"type"`
			} `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("bulk response: %v: %.500s", err, body)
	}
	var out []int
	for _, item := range res.Items {
		c := item["create"]
		if c.Status == http.StatusConflict && c.Error.Type != "version_conflict_engine_exception" {
			t.Errorf("409 item with error type %q", c.Error.Type)
		}
		out = append(out, c.Status)
	}
	if len(out) != len(ids) {
		t.Fatalf("bulk answered %d items for %d creates", len(out), len(ids))
	}
	return out
}

func bulkBody(index string, ids []string, pad int) string {
	var b strings.Builder
	filler := strings.Repeat("p", pad)
	for _, id := range ids {
		fmt.Fprintf(&b, `{"create":{"_index":%q,"_id":%q}}`+"\n", index, id)
		fmt.Fprintf(&b, `{"message":%q,"pad":%q}`+"\n", "doc "+id, filler)
	}
	return b.String()
}

func manyIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "id-" + strconv.Itoa(i)
	}
	return ids
}

func allStatus(statuses []int, want int) bool {
	return !slices.ContainsFunc(statuses, func(s int) bool { return s != want })
}

func count(t *testing.T, n *Node, index string) int {
	t.Helper()
	if status, body := call(t, n, http.MethodPost, "/"+index+"/_refresh", ""); status != http.StatusOK {
		t.Fatalf("refresh %s: status %d: %s", index, status, body)
	}
	status, body := call(t, n, http.MethodGet, "/"+index+"/_count", "")
	var res struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || status != http.StatusOK {
		t.Fatalf("count %s: status %d, %v: %s", index, status, err, body)
	}
	return res.Count
}

// call sends one request to the node; bodies of _bulk go as NDJSON.
func call(t *testing.T, n *Node, method, path, body string) (int, string) {
	t.Helper()
	status, data, err := send(n, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, data
}

// tryCall is call for a request the node may cut short: the error, if
// any, is the caller's.
func tryCall(n *Node, method, path, body string) (int, error) {
	status, _, err := send(n, method, path, body)
	return status, err
}

func send(n *Node, method, path, body string) (int, string, error) {
	req, err := http.NewRequest(method, n.URL()+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.HasSuffix(path, "/_bulk") {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return res.StatusCode, string(data), err
}

// logMemory records the last start time and the resident set of the node.
func logMemory(t *testing.T, n *Node) {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(n.PID()) + "/status")
	if err != nil {
		t.Logf("%s started in %v (no /proc: %v)", n.Engine(), n.StartTime(), err)
		return
	}
	defer f.Close()
	mem := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && (k == "VmRSS" || k == "VmHWM") {
			mem[k] = strings.TrimSpace(v)
		}
	}
	t.Logf("%s (started in %v): resident %s, peak %s", n.Engine(), n.StartTime(), mem["VmRSS"], mem["VmHWM"])
}

// recorder is a testing.TB that notes a failure or a skip instead of
// acting on it; the calling goroutine ends as with the real ones.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with r on a goroutine of its own, as the testing package
// runs a test, and waits for it.
func (r *recorder) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
}

// TestRequiredServersFail checks that with SSPR_REQUIRE_SERVERS=1 (or
// CI=true) an engine that is not there fails the test with the reason
// instead of skipping it, whatever SSPR_SHARED_TESTDATA says; without
// either, it is a skip.
func TestRequiredServersFail(t *testing.T) {
	t.Setenv("SSPR_TEST_CACHE", t.TempDir())
	t.Setenv("SSPR_SHARED_TESTDATA", "")
	for _, c := range []struct {
		env, val string
		fail     bool
	}{{"SSPR_REQUIRE_SERVERS", "1", true}, {"CI", "true", true}, {"SSPR_REQUIRE_SERVERS", "", false}} {
		t.Setenv("SSPR_REQUIRE_SERVERS", "")
		t.Setenv("CI", "")
		t.Setenv(c.env, c.val)
		for _, start := range []func(testing.TB){
			func(tb testing.TB) { Start(tb, ES8) },
			func(tb testing.TB) { Shared(tb, ES8) },
		} {
			r := &recorder{TB: t}
			r.run(start)
			if r.failed != c.fail || r.skipped == c.fail || !strings.Contains(r.msg, DepsScript) {
				t.Errorf("%s=%q: failed %v, skipped %v (%q); want failed %v, naming %s", c.env, c.val, r.failed, r.skipped, r.msg, c.fail, DepsScript)
			}
		}
	}
}
