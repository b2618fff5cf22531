package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

// dlLine is one dead-letter line as written, with its record and its keys.
type dlLine struct {
	raw string
	rec deadletter.Record
	m   map[string]any
}

func (l dlLine) reason() string { s, _ := l.m["reason"].(string); return s }

func readDL(t *testing.T, path string) []dlLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []dlLine
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		r, ok := deadletter.Parse([]byte(l))
		if !ok {
			t.Fatalf("not a dead-letter line: %q", l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, dlLine{raw: l, rec: r, m: m})
	}
	return out
}

// TestRedriveEveryShape makes the exporter write a dead letter of every
// stage and shape, replays them, and checks that each comes out as a
// document, a counted drop or a dead letter again: as many out as in.
func TestRedriveEveryShape(t *testing.T) {
	dir := t.TempDir()
	noTime := strings.Replace(strings.Replace(rec("nt"), `"time":"2026-11-02T08:00:08Z",`, "", 1), `"activityDateTime":"2026-11-02T08:00:08.5+00:00",`, "", 1)
	noAction := strings.Replace(rec("na"), `"Reset password (self-service)"`, `"✓✓✓"`, 1)
	big := `{"records":[` + strings.Repeat(rec("b")+",", 5) + rec("b") + `]}`
	if len(big) <= 2200 {
		t.Fatalf("the too-large value has %d bytes", len(big))
	}
	input := strings.Join([]string{
		"not json {", // 1: invalid JSON
		`{"records":[` + rec("x") + `, "oops", []]}`, // 2: a document, a non-object, an empty array
		`{"records":{"a":1}}`,                        // 3: a broken envelope
		noTime,                                       // 4: normalize, no time
		noAction,                                     // 5: normalize, no action
		"\xff\xfe{\"records\":",                      // 6: not UTF-8: raw_base64
		big,                                          // 7: too large, truncated
		rec("y"),                                     // 8: refused by the sink
	}, "\n") + "\n"
	in := write(t, "in.json", input)

	es := esdouble.New()
	defer es.Close()
	es.FailItem("y", http.StatusBadRequest)
	cfg := write(t, "c.toml", `
[output.file]
path = "`+filepath.Join(dir, "first.ndjson")+`"
[output.elasticsearch]
enabled = true
addresses = ["`+es.URL()+`"]
`)
	dl1 := filepath.Join(dir, "dl1.ndjson")
	if r := exec(t, "", "replay", "--config", cfg, "--max-body-bytes", "2200", "--dead-letter", dl1, in); r.code != 0 {
		t.Fatalf("first replay: exit %d: %s", r.code, r.stderr)
	}
	first := readDL(t, dl1)
	wantFirst := map[string]int{"invalid_json": 2, "not_object": 1, "empty": 1, "bad_envelope": 1, "no_time": 1, "normalize": 1, "too_large": 1, "sink_rejected": 1}
	gotFirst := map[string]int{}
	for _, l := range first {
		gotFirst[l.reason()]++
	}
	for k, n := range wantFirst {
		if gotFirst[k] != n {
			t.Errorf("first run: %d dead letters with reason %q, want %d (all: %v)", gotFirst[k], k, n, gotFirst)
		}
	}
	if len(first) != 9 {
		t.Fatalf("first run wrote %d dead letters, want 9", len(first))
	}

	// Shapes the exporter writes that this run cannot make: a stream's
	// empty message, a dead letter of a later format version, a dead letter
	// around a dead letter, and a torn dead-letter line read back as input.
	var sinkDL dlLine
	for _, l := range first {
		if l.rec.Stage == deadletter.StageSink {
			sinkDL = l
		}
	}
	emptyMsg := `{"dead_letter":1,"time":"2026-11-25T00:00:00Z","stage":"decode","reason":"empty","source":{"kind":"eventhubs","topic":"hub","partition":"1","offset":"88","sequence_number":8},"error":"message holds no records","raw":" \n"}`
	v2 := `{"dead_letter":2,"time":"2026-11-25T00:00:00Z","stage":"decode","source":{"kind":"kafka","topic":"t","partition":"0","offset":"5"},"error":"x","payload":{"future":"layout"}}`
	nestedJSON, _ := json.Marshal(map[string]any{"dead_letter": 1, "time": "2026-11-25T00:00:00Z", "stage": "decode", "reason": "invalid_json",
		"source": map[string]any{"kind": "file", "file": "dl0.ndjson", "line": 3}, "error": "x", "raw": sinkDL.raw})
	torn := first[0].raw[:len(first[0].raw)-1]
	tornIn := write(t, "torn.ndjson", torn+"\n")
	dl0 := filepath.Join(dir, "dl0.ndjson")
	if r := exec(t, "", "replay", "--dead-letter", dl0, tornIn); r.code != 0 {
		t.Fatalf("torn replay: exit %d: %s", r.code, r.stderr)
	}
	tornDL := readDL(t, dl0)
	if len(tornDL) != 1 {
		t.Fatalf("a torn dead-letter line gave %d dead letters, want 1", len(tornDL))
	}

	var all bytes.Buffer
	for _, l := range first {
		all.WriteString(l.raw + "\n")
	}
	for _, l := range []string{emptyMsg, v2, string(nestedJSON), tornDL[0].raw} {
		all.WriteString(l + "\n")
	}
	replayIn := write(t, "replay.ndjson", all.String())
	total := len(first) + 4

	dl2 := filepath.Join(dir, "dl2.ndjson")
	r := exec(t, "", "replay", "--max-body-bytes", "2200", "--dead-letter", dl2, replayIn)
	if r.code != 0 {
		t.Fatalf("re-drive: exit %d: %s", r.code, r.stderr)
	}
	docs := ids(t, r.stdout)
	sum := summary(t, r.stderr)
	again := readDL(t, dl2)
	dropped := int(sum["dropped"].(float64))
	if out := len(docs) + dropped + len(again); out != total {
		t.Errorf("re-drive: %d dead letters in, %d out (%d documents %v, %d dropped, %d dead letters)", total, out, len(docs), docs, dropped, len(again))
	}
	if strings.Join(docs, ",") != "y,y" {
		t.Errorf("documents %v, want the refused one from its sink dead letter and from the nested one", docs)
	}
	if dropped != 0 {
		t.Errorf("%d counted as dropped: a dead letter is never an ordinary record", dropped)
	}

	byReason := map[string][]dlLine{}
	for _, l := range again {
		byReason[l.reason()] = append(byReason[l.reason()], l)
	}
	for reason, n := range map[string]int{"invalid_json": 3, "not_object": 1, "empty": 2, "bad_envelope": 1, "no_time": 1, "normalize": 1, "too_large": 1, "unsupported_version": 1} {
		if len(byReason[reason]) != n {
			t.Errorf("re-drive: %d dead letters with reason %q, want %d", len(byReason[reason]), reason, n)
		}
	}
	// Each dead letter again keeps its original position.
	for _, l := range again {
		if l.reason() == "unsupported_version" {
			continue
		}
		found := false
		for _, o := range append(first, tornDL[0], dlLine{rec: mustParse(t, emptyMsg)}) {
			if o.rec.Source.String() == l.rec.Source.String() {
				found = true
			}
		}
		if !found {
			t.Errorf("dead letter again at %v: not an original position", l.rec.Source)
		}
	}
	var tooLarge dlLine
	for _, l := range first {
		if l.rec.Truncated {
			tooLarge = l
		}
	}
	if tl := byReason["too_large"]; len(tl) == 1 {
		got := tl[0].rec
		if !got.Truncated || got.Size != tooLarge.rec.Size || got.SHA256 != tooLarge.rec.SHA256 || got.Source.String() != tooLarge.rec.Source.String() || got.Source.Line != 7 {
			t.Errorf("re-driven truncated dead letter lost its facts: %+v, want those of %+v", got, tooLarge.rec)
		}
	}
	if uv := byReason["unsupported_version"]; len(uv) == 1 {
		if !strings.Contains(uv[0].rec.Error, "version 2") {
			t.Errorf("unsupported version error %q does not name the version", uv[0].rec.Error)
		}
		if p, _ := uv[0].rec.Payload(); string(p) != v2 {
			t.Errorf("unsupported version payload %q, want the line as read", p)
		}
		if !strings.Contains(r.stderr, "version 2") || !strings.Contains(strings.ToLower(r.stderr), "error") {
			t.Errorf("no error-level log line naming the version: %s", r.stderr)
		}
	}
	for _, l := range byReason["invalid_json"] {
		if l.rec.Source.Line == 6 && l.rec.RawBase64 == "" {
			t.Errorf("the not-UTF-8 input lost its raw_base64 form: %s", l.raw)
		}
	}
}

func mustParse(t *testing.T, line string) deadletter.Record {
	t.Helper()
	r, ok := deadletter.Parse([]byte(line))
	if !ok {
		t.Fatalf("not a dead letter: %s", line)
	}
	return r
}

// TestRedriveValidatesSinkDocuments: a sink dead letter's document goes to
// the outputs only when it is a document this exporter could have written.
func TestRedriveValidatesSinkDocuments(t *testing.T) {
	good := `{"@timestamp":"2026-11-02T08:00:08.5Z","ecs":{"version":"8.17.0"},"event":{"kind":"event","category":["iam"],"type":["user","change"],"action":"password-reset","outcome":"failure","id":"good","dataset":"entra.sspr"}}`
	bad := map[string]string{
		"action not a slug":   strings.Replace(good, `"password-reset"`, `"Password Reset ✓"`, 1),
		"no event.id":         strings.Replace(good, `"id":"good",`, ``, 1),
		"empty event.id":      strings.Replace(good, `"id":"good"`, `"id":""`, 1),
		"bad @timestamp":      strings.Replace(good, `2026-11-02T08:00:08.5Z`, `yesterday`, 1),
		"no @timestamp":       strings.Replace(good, `"@timestamp":"2026-11-02T08:00:08.5Z",`, ``, 1),
		"kind alert":          strings.Replace(good, `"kind":"event"`, `"kind":"alert"`, 1),
		"unknown outcome":     strings.Replace(good, `"outcome":"failure"`, `"outcome":"maybe"`, 1),
		"unknown field":       strings.Replace(good, `"ecs":`, `"extra":{"x":1},"ecs":`, 1),
		"wrong dataset":       strings.Replace(good, `entra.sspr`, `other`, 1),
		"not JSON":            `{"@timestamp":`,
		"not an object":       `[1,2]`,
		"category not iam":    strings.Replace(good, `["iam"]`, `["network"]`, 1),
		"event.type unknown":  strings.Replace(good, `["user","change"]`, `["user","exfiltration"]`, 1),
		"ecs.version missing": strings.Replace(good, `"ecs":{"version":"8.17.0"},`, ``, 1),
	}
	var in bytes.Buffer
	line := func(name, doc string) {
		b, _ := json.Marshal(map[string]any{"dead_letter": 1, "time": "2026-11-25T00:00:00Z", "stage": "sink", "sink": "elasticsearch",
			"source": map[string]any{"kind": "file", "file": name, "line": 1}, "error": "mapping", "raw": doc})
		in.Write(append(b, '\n'))
	}
	line("good", good)
	for name, doc := range bad {
		line(name, doc)
	}
	dl := filepath.Join(t.TempDir(), "dl.ndjson")
	r := exec(t, in.String(), "replay", "--dead-letter", dl)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := strings.Join(ids(t, r.stdout), ","); got != "good" {
		t.Errorf("documents %q, want only the valid one", got)
	}
	again := readDL(t, dl)
	seen := map[string]bool{}
	for _, l := range again {
		seen[l.rec.Source.File] = true
		if l.reason() != "invalid_document" {
			t.Errorf("%s: reason %q, want invalid_document", l.rec.Source.File, l.reason())
		}
		if p, _ := l.rec.Payload(); string(p) != bad[l.rec.Source.File] {
			t.Errorf("%s: payload %q, want the document", l.rec.Source.File, p)
		}
	}
	for name := range bad {
		if !seen[name] {
			t.Errorf("%s: went to the outputs instead of the dead letters", name)
		}
	}
}
