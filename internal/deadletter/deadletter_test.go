package deadletter

import (
	"bytes"
	"crypto/sha256"
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
		if err := w.Write(New(time.Unix(0, 0), StageDecode, pos, errors.New("bad"), payload)); err != nil {
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
		if r.Source.Partition != "3" || *r.Source.Sequence != 42 || r.Error != "bad" || r.Stage != StageDecode {
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
