package deadletter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

func TestRoundTrip(t *testing.T) {
	seq := int64(42)
	pos := stream.Position{Kind: "eventhubs", Topic: "hub", Partition: "3", Offset: "42000", Sequence: &seq}
	for _, payload := range [][]byte{[]byte(`{"a":"é"}`), {0xff, 0xfe, 'x'}, {}} {
		var buf bytes.Buffer
		w := NewNDJSON(&buf)
		if err := w.Write(context.Background(), New(time.Unix(0, 0), StageDecode, ReasonInvalidJSON, pos, errors.New("bad"), payload)); err != nil {
			t.Fatal(err)
		}
		line := buf.Bytes()
		if !LooksLike(line) {
			t.Fatalf("marker not first: %s", line)
		}
		r, ok := Parse(line)
		if !ok {
			t.Fatalf("not parsed: %s", line)
		}
		got, err := r.Payload()
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("payload %q, want %q (%v)", got, payload, err)
		}
		if utf8.Valid(payload) != (r.Raw != nil) {
			t.Errorf("raw/raw_base64 choice wrong for %q: %s", payload, line)
		}
		if r.Source.Partition != "3" || *r.Source.Sequence != 42 || r.Error != "bad" || r.Stage != StageDecode || r.Reason != ReasonInvalidJSON {
			t.Errorf("fields lost: %+v", r)
		}
	}
}

func TestTruncatedKeepsValidText(t *testing.T) {
	whole := []byte(strings.Repeat("é", 10))
	var r Record
	r.SetTruncated(whole[:5], int64(len(whole)), sha256.Sum256(whole)) // cuts "é" in half
	if r.Raw == nil || *r.Raw != "éé" || !r.Truncated || r.Size != 20 || len(r.SHA256) != 64 {
		t.Errorf("%+v", r)
	}
}

func TestParseRejectsOtherLines(t *testing.T) {
	for _, l := range []string{``, `{"records":[]}`, `{"dead_letter":99,"stage":"decode"}`, `{"dead_letter":1}`, `not json {"dead_letter":1`} {
		if _, ok := Parse([]byte(l)); ok {
			t.Errorf("parsed %q", l)
		}
	}
}

func TestReasonIsWrittenAndOptional(t *testing.T) {
	var buf bytes.Buffer
	if err := NewNDJSON(&buf).Write(context.Background(), New(time.Unix(0, 0), StageDecode, ReasonBadEnvelope, stream.Position{Kind: "stdin"}, errors.New("x"), nil)); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["reason"] != "bad_envelope" || m["dead_letter"] != 1.0 {
		t.Errorf("line %s: want reason bad_envelope in format version 1", buf.Bytes())
	}
	// A line written before reasons existed still reads.
	r, ok := Parse([]byte(`{"dead_letter":1,"time":"2026-01-01T00:00:00Z","stage":"decode","source":{"kind":"stdin"},"error":"x","raw":"y"}`))
	if !ok || r.Reason != "" {
		t.Errorf("old line: ok=%v reason=%q", ok, r.Reason)
	}
	for _, k := range reasons {
		if !k.Known() {
			t.Errorf("%s not known", k)
		}
	}
	if Reason("invalid JSON at line 3").Known() {
		t.Error("error text taken as a reason")
	}
}

func TestDecodeNamesAnUnknownVersion(t *testing.T) {
	_, err := Decode([]byte(`{"dead_letter":7,"stage":{"new":"layout"}}`))
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Version != 7 || !strings.Contains(err.Error(), "version 7") {
		t.Errorf("err = %v, want a *VersionError naming version 7", err)
	}
	for _, l := range []string{`{"records":[]}`, `{"dead_letter":0,"stage":"decode"}`, `{"dead_letter":"1","stage":"decode"}`, `{"dead_letter":1}`} {
		if _, err := Decode([]byte(l)); !errors.Is(err, ErrNotDeadLetter) {
			t.Errorf("Decode(%s) = %v, want ErrNotDeadLetter", l, err)
		}
	}
}
