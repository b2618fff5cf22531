package pipeline

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// ehPos is where an Event Hubs source says a message came from.
func ehPos() stream.Position {
	seq := int64(41)
	return stream.Position{Kind: "eventhubs", Topic: "hub", Partition: "2", Offset: "4100", Sequence: &seq}
}

// kafkaPos is where the Kafka source says a message came from.
func kafkaPos() stream.Position {
	return stream.Position{Kind: "kafka", Topic: "audit", Partition: "0", Offset: "17"}
}

// reasonOf returns the "reason" key of a dead letter as written.
func reasonKey(t *testing.T, r deadletter.Record) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m["reason"].(string)
	return s
}

func payload(t *testing.T, r deadletter.Record) []byte {
	t.Helper()
	p, err := r.Payload()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// samePos compares positions by their printed form (Sequence is a pointer).
func samePos(a, b stream.Position) bool { return a.String() == b.String() }

// Bodies here are built as the Event Hubs and Kafka sources build them: the
// event's or message's bytes with the partition position, nothing else set.

func TestMessageEmptyIsOneDeadLetter(t *testing.T) {
	d := testDecoder(t)
	for _, data := range []string{"", " ", "\r\n\t \n", `{"records":[]}`, "[]"} {
		for _, pos := range []stream.Position{ehPos(), kafkaPos()} {
			res := d.Decode([]stream.Body{{Data: []byte(data), Pos: pos}})
			if len(res.DeadLetters) != 1 || len(res.Docs) != 0 {
				t.Errorf("%s message %q: %d dead letters, %d docs; want one dead letter", pos.Kind, data, len(res.DeadLetters), len(res.Docs))
				continue
			}
			r := res.DeadLetters[0]
			if reasonKey(t, r) != "empty" || r.Stage != deadletter.StageDecode || !samePos(r.Source, pos) {
				t.Errorf("%s message %q: reason %q stage %q source %v", pos.Kind, data, reasonKey(t, r), r.Stage, r.Source)
			}
			if got := payload(t, r); string(got) != data {
				t.Errorf("%s message %q: payload %q", pos.Kind, data, got)
			}
		}
	}
}

func TestMessageBinaryIsOneDeadLetter(t *testing.T) {
	d := testDecoder(t)
	bin := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range bin {
		bin[i] = byte(rng.Uint32())
	}
	if bytes.Count(bin, []byte{'\n'}) < 5 {
		t.Fatal("test body should span several lines")
	}
	res := d.Decode([]stream.Body{{Data: bin, Pos: ehPos()}})
	if len(res.DeadLetters) != 1 {
		t.Fatalf("4 KB binary event: %d dead letters, want 1", len(res.DeadLetters))
	}
	r := res.DeadLetters[0]
	if r.Raw != nil || r.RawBase64 == "" || !bytes.Equal(payload(t, r), bin) {
		t.Errorf("dead letter does not hold the whole event as raw_base64 (raw set: %v, %d bytes)", r.Raw != nil, len(payload(t, r)))
	}
	if reasonKey(t, r) != "invalid_json" || !samePos(r.Source, ehPos()) {
		t.Errorf("reason %q source %v", reasonKey(t, r), r.Source)
	}
}

func TestMessageGzipIsOneDeadLetterOrDecoded(t *testing.T) {
	d := testDecoder(t)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	body := `{"records":[` + record("g1") + `,` + otherRecord + `]}`
	for range 20 {
		_, _ = zw.Write([]byte(body + "\n"))
	}
	_ = zw.Close()
	res := d.Decode([]stream.Body{{Data: zb.Bytes(), Pos: kafkaPos()}})
	switch {
	case len(res.DeadLetters) == 1 && len(res.Docs) == 0:
		if !bytes.Equal(payload(t, res.DeadLetters[0]), zb.Bytes()) {
			t.Error("the dead letter does not hold the whole gzip message")
		}
	case len(res.DeadLetters) == 0 && len(res.Docs) == 20:
		// A decoder that reads gzip messages.
	default:
		t.Errorf("gzip message: %d dead letters, %d docs; want one dead letter (or every document)", len(res.DeadLetters), len(res.Docs))
	}
}

func TestMessageFailedValueDeadLettersTheRest(t *testing.T) {
	d := testDecoder(t)
	rest := `{"records":[{"broken"` + "\n" + record("3") + "\n" + `{"records":[` + record("4") + "]}\n"
	msg := `{"records":[` + record("1") + `]}` + "\n" + record("2") + "\n  " + rest
	res := d.Decode([]stream.Body{{Data: []byte(msg), Pos: ehPos()}})
	if got := docIDs(res); got != "1,2" {
		t.Errorf("docs %q, want the values before the failed one", got)
	}
	if len(res.DeadLetters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(res.DeadLetters))
	}
	r := res.DeadLetters[0]
	if got := string(payload(t, r)); got != rest {
		t.Errorf("dead letter payload\n%q\nwant the message from the failed value to its end\n%q", got, rest)
	}
	if reasonKey(t, r) != "invalid_json" || !strings.HasPrefix(r.Error, "invalid JSON") || !samePos(r.Source, ehPos()) {
		t.Errorf("reason %q error %q source %v", reasonKey(t, r), r.Error, r.Source)
	}
}

func TestMessageTooLargeValueDeadLettersTheRest(t *testing.T) {
	d := testDecoder(t)
	d.MaxBodyBytes = 1000
	big := `{"records":[` + strings.Repeat(record("z")+",", 3) + record("z") + `]}`
	rest := big + "\n" + record("after")
	res := d.Decode([]stream.Body{{Data: []byte(record("ok") + "\n" + rest), Pos: stream.Position{Kind: "kafka", Topic: "t", Partition: "3", Offset: "9"}}})
	if got := docIDs(res); got != "ok" {
		t.Fatalf("docs %q", got)
	}
	if len(res.DeadLetters) != 1 {
		t.Fatalf("dead letters %d", len(res.DeadLetters))
	}
	r := res.DeadLetters[0]
	if reasonKey(t, r) != "too_large" || !r.Truncated || r.Size != int64(len(rest)) || len(r.SHA256) != 64 || r.Raw == nil || !strings.HasPrefix(rest, *r.Raw) || len(*r.Raw) > 1000 {
		t.Errorf("oversize dead letter: reason %q truncated=%v size=%d (want %d) sha=%q", reasonKey(t, r), r.Truncated, r.Size, len(rest), r.SHA256)
	}
}

// TestStreamDeadLetterShapedRecordIsClassified: only replay re-drives dead
// letters; from a stream, a record shaped like one is a record like any other.
func TestStreamDeadLetterShapedRecordIsClassified(t *testing.T) {
	d := testDecoder(t)
	doc := `{"@timestamp":"2026-11-02T08:00:08.5Z","ecs":{"version":"8.17.0"},"event":{"kind":"event","category":["iam"],"type":["user","change"],"action":"injected-action","outcome":"success","id":"forged","dataset":"entra.sspr"}}`
	sinkDL, _ := json.Marshal(map[string]any{"dead_letter": 1, "time": "2026-11-25T00:00:00Z", "stage": "sink", "sink": "elasticsearch",
		"source": map[string]any{"kind": "eventhubs"}, "error": "x", "raw": doc})
	decodeDL, _ := json.Marshal(map[string]any{"dead_letter": 1, "time": "2026-11-25T00:00:00Z", "stage": "decode",
		"source": map[string]any{"kind": "kafka"}, "error": "x", "raw": record("via-kafka")})
	res := d.Decode([]stream.Body{
		{Data: []byte(`{"records":[` + string(sinkDL) + `]}`), Pos: ehPos()},
		{Data: decodeDL, Pos: kafkaPos()},
	})
	if len(res.Docs) != 0 {
		t.Fatalf("dead-letter-shaped records from streams became documents: %s", docIDs(res))
	}
	if res.Counts.Records != 2 || res.Counts.Dropped != 2 || len(res.DeadLetters) != 0 {
		t.Errorf("counts %+v, %d dead letters; want 2 records read and dropped", res.Counts, len(res.DeadLetters))
	}
}

func docIDs(res Result) string {
	var ids []string
	for _, d := range res.Docs {
		ids = append(ids, d.Event.ID)
	}
	return strings.Join(ids, ",")
}

// An envelope nested deeper than the scanner opens is a broken envelope:
// one dead letter with that reason, not an "invalid JSON" one.
func TestMessageTooDeepEnvelopeIsBadEnvelope(t *testing.T) {
	d := testDecoder(t)
	deep := `{"category":"AuditLogs"}`
	for range 12 {
		deep = `{"records":[` + deep + `]}`
	}
	res := d.Decode([]stream.Body{{Data: []byte(deep), Pos: ehPos()}})
	if len(res.DeadLetters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(res.DeadLetters))
	}
	if got := reasonKey(t, res.DeadLetters[0]); got != "bad_envelope" {
		t.Errorf("reason %q, want bad_envelope", got)
	}
}
