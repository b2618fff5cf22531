package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/streamtest"
)

const ssprRecord = `{"time":"2026-11-02T08:00:08Z","category":"AuditLogs","tenantId":"50a74cff-026f-4c84-aa8f-f5f8d837115f","properties":{"id":"ID","result":"success","activityDisplayName":"Reset password (self-service)","activityDateTime":"2026-11-02T08:00:08.5+00:00","loggedByService":"Self-service Password Management","initiatedBy":{"user":{"id":"u1","userPrincipalName":"a@contoso.example","ipAddress":"203.0.113.7"}},"targetResources":[{"id":"u1","type":"User","userPrincipalName":"a@contoso.example"}]}}`

const otherRecord = `{"time":"2026-11-02T08:00:08Z","category":"AuditLogs","properties":{"id":"X","activityDisplayName":"Update user","loggedByService":"Core Directory"}}`

func record(id string) string { return strings.Replace(ssprRecord, `"id":"ID"`, `"id":"`+id+`"`, 1) }

// newSource returns a source of one batch per argument, each body at its
// own Event Hubs offset.
func newSource(bodies ...[]string) *streamtest.Source {
	batches := make([][]stream.Body, len(bodies))
	for i, bs := range bodies {
		batches[i] = streamtest.Bodies(stream.Position{Kind: "eventhubs", Partition: "0", Offset: string(rune('0' + i))}, bs...)
	}
	return streamtest.NewSource(batches...)
}

// rejectIDs refuses the documents with these event ids, as a mapping
// conflict.
func rejectIDs(ids ...string) func(ecs.Event) error {
	return func(d ecs.Event) error {
		if slices.Contains(ids, d.Event.ID) {
			return errors.New("mapping conflict")
		}
		return nil
	}
}

func testDecoder(t testing.TB) Decoder {
	t.Helper()
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Decoder{Catalog: cat, Now: func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) }}
}

func deadLetters(t *testing.T, buf *bytes.Buffer) []deadletter.Record {
	t.Helper()
	var out []deadletter.Record
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		r, ok := deadletter.Parse(line)
		if !ok {
			t.Fatalf("not a dead-letter line: %s", line)
		}
		out = append(out, r)
	}
	return out
}

func TestPipelineDeliversAndAcks(t *testing.T) {
	src := newSource(
		[]string{`{"records":[` + record("a") + `,` + otherRecord + `]}`},
		[]string{`{"records":[` + record("b") + `, 42]}`, `not json`},
	)
	s1, s2 := &streamtest.Sink{}, &streamtest.Sink{Reject: rejectIDs("b")}
	var dl bytes.Buffer
	p := New(src, []NamedSink{{"one", s1}, {"two", s2}}, deadletter.NewNDJSON(&dl), Options{Decoder: testDecoder(t)})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s1.IDs(), ","); got != "a,b" {
		t.Errorf("sink one got %q", got)
	}
	if got := strings.Join(s2.IDs(), ","); got != "a" {
		t.Errorf("sink two got %q", got)
	}
	acks := src.Acks()
	for i := 0; i < 2; i++ {
		if err, ok := acks[i]; !ok || err != nil {
			t.Errorf("batch %d: acked=%v err=%v", i, ok, err)
		}
	}
	dls := deadLetters(t, &dl)
	if len(dls) != 3 {
		t.Fatalf("dead letters: %d, want 3: %s", len(dls), dl.String())
	}
	stages := map[string]int{}
	for _, r := range dls {
		stages[r.Stage]++
		if r.Source.Kind != "eventhubs" || r.Source.Partition != "0" {
			t.Errorf("dead letter without position: %+v", r.Source)
		}
	}
	if stages["decode"] != 2 || stages["sink"] != 1 {
		t.Errorf("stages %v", stages)
	}
	for _, r := range dls {
		if r.Stage == "sink" {
			payload, _ := r.Payload()
			var doc ecs.Event
			if r.Sink != "two" || json.Unmarshal(payload, &doc) != nil || doc.Event.ID != "b" {
				t.Errorf("sink dead letter: sink=%q payload=%s", r.Sink, payload)
			}
		}
	}
	sum := p.Summary()
	if sum.Records != 4 || sum.SSPR != 2 || sum.Dropped != 1 || sum.DeadLettered != 3 || sum.ByAction["password-reset"] != 2 {
		t.Errorf("summary %+v", sum)
	}
}

func TestPipelineSinkFailureIsNotAcked(t *testing.T) {
	src := newSource([]string{record("a")}, []string{record("b")})
	failing := &streamtest.Sink{Fail: errors.New("cluster unavailable")}
	var dl bytes.Buffer
	p := New(src, []NamedSink{{"es", failing}}, deadletter.NewNDJSON(&dl), Options{Decoder: testDecoder(t)})
	err := p.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cluster unavailable") {
		t.Fatalf("Run error = %v", err)
	}
	if src.Acks()[0] == nil {
		t.Errorf("batch acked without error after a sink failure")
	}
	if dl.Len() != 0 {
		t.Errorf("sink failure was dead-lettered: %s", dl.String())
	}
}

func TestPipelineShutdownFinishesInFlight(t *testing.T) {
	src := newSource([]string{record("a")}, []string{record("b")})
	sink := &streamtest.Sink{Block: make(chan struct{})}
	p := New(src, []NamedSink{{"slow", sink}}, deadletter.NewNDJSON(io.Discard), Options{Decoder: testDecoder(t), ShutdownGrace: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	cancel() // stop reading while the first batch is held in the sink
	close(sink.Block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Whatever was read was delivered and acked without error.
	acks := src.Acks()
	for i, err := range acks {
		if err != nil {
			t.Errorf("batch %d acked with %v", i, err)
		}
	}
	if len(sink.IDs()) != len(acks) {
		t.Errorf("delivered %d, acked %d", len(sink.IDs()), len(acks))
	}
}

func TestPipelineGraceExpiryDoesNotAck(t *testing.T) {
	src := newSource([]string{record("a")})
	sink := &streamtest.Sink{Block: make(chan struct{})} // never released
	p := New(src, []NamedSink{{"stuck", sink}}, deadletter.NewNDJSON(io.Discard), Options{Decoder: testDecoder(t), ShutdownGrace: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	<-waitRead(src)
	cancel()
	err := <-done
	var ue *UndeliveredError
	if !errors.As(err, &ue) || ue.Batches != 1 {
		t.Fatalf("Run returned %v, want an *UndeliveredError for 1 batch", err)
	}
	if strings.Contains(err.Error(), "context canceled") || !strings.Contains(err.Error(), "read again") {
		t.Errorf("error %q", err)
	}
	if src.Acks()[0] == nil {
		t.Error("undelivered batch acked as delivered")
	}
}

// waitRead returns a channel closed once the source has no batch left.
func waitRead(s *streamtest.Source) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		for {
			if s.Unread() == 0 {
				close(c)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return c
}

func TestRedriverRedrivesDeadLetters(t *testing.T) {
	d := testDecoder(t)
	// A decode dead letter holding a valid record, and a sink dead letter
	// holding a document, are both delivered again.
	first := d.Decode([]stream.Body{{Data: []byte(record("x")), Pos: stream.Position{Kind: "file", File: "in.json", Line: 7}}})
	if len(first.Docs) != 1 {
		t.Fatal("setup: no document")
	}
	docJSON := first.Docs[0].AppendJSON(nil)
	dec := deadletter.New(time.Now(), deadletter.StageDecode, deadletter.ReasonInvalidJSON, stream.Position{Kind: "file", File: "in.json", Line: 7}, errors.New("x"), []byte(record("y")))
	sink := deadletter.New(time.Now(), deadletter.StageSink, deadletter.ReasonSinkRejected, stream.Position{Kind: "file", File: "in.json", Line: 9}, errors.New("x"), docJSON)
	sink.Sink = "es"
	var bodies []stream.Body
	for i, r := range []deadletter.Record{dec, sink} {
		var line bytes.Buffer
		_ = deadletter.NewNDJSON(&line).Write(context.Background(), r)
		bodies = append(bodies, stream.Body{Data: bytes.TrimSpace(line.Bytes()), Pos: stream.Position{Kind: "file", File: "dl.ndjson", Line: int64(i + 1)}, Form: stream.FormRecord})
	}
	res := Redriver{Decoder: &d}.Decode(bodies)
	if len(res.Docs) != 2 || res.Docs[0].Event.ID != "y" || res.Docs[1].Event.ID != "x" {
		t.Fatalf("re-driven docs: %+v %+v", res.Docs, res.DeadLetters)
	}
	if res.DocPos[0].File != "in.json" || res.DocPos[0].Line != 7 {
		t.Errorf("re-driven position %+v, want the original", res.DocPos[0])
	}
	if res.Docs[1].Time.IsZero() || res.Docs[1].Timestamp != first.Docs[0].Timestamp {
		t.Errorf("document timestamp not restored: %v", res.Docs[1].Time)
	}
	// The decoder alone reads the same lines as ordinary records.
	plain := d.Decode(bodies)
	if len(plain.Docs) != 0 || plain.Counts.Dropped != 2 {
		t.Errorf("decoder without re-drive: %d docs, counts %+v", len(plain.Docs), plain.Counts)
	}
}

func TestDecoderEscapedNamesAndKeys(t *testing.T) {
	d := testDecoder(t)
	esc := strings.Replace(record("e1"), `"activityDisplayName":"Reset password (self-service)"`, `"activity\u0044isplayName":"RESET password (self\u002dservice)"`, 1)
	res := d.Decode([]stream.Body{{Data: []byte(esc), Pos: stream.Position{Kind: "stdin"}}})
	if len(res.Docs) != 1 || res.Docs[0].Event.Action != "password-reset" {
		t.Fatalf("escaped record not classified: %+v %+v", res.Docs, res.DeadLetters)
	}
	if res.Docs[0].Azure.AuditLogs.OperationName != "RESET password (self-service)" {
		t.Errorf("operation name %q", res.Docs[0].Azure.AuditLogs.OperationName)
	}
}
