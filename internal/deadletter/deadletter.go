// Package deadletter defines the one NDJSON format in which every stage
// records input it could not process, and writers for it.
package deadletter

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// FormatVersion is the value of the marker key "dead_letter". A consumer that
// sees a higher version than it knows must not guess at the layout.
const FormatVersion = 1

// Stages.
const (
	StageDecode    = "decode"
	StageNormalize = "normalize"
	StageSink      = "sink"
)

// Record is one dead letter.
type Record struct {
	DeadLetter int             `json:"dead_letter"`
	Time       string          `json:"time"`
	Stage      string          `json:"stage"`
	Sink       string          `json:"sink,omitempty"`
	Source     stream.Position `json:"source"`
	Error      string          `json:"error"`
	// Exactly one of Raw and RawBase64 is set: Raw when the payload is valid
	// UTF-8, RawBase64 otherwise, so the line stays valid JSON either way.
	Raw       *string `json:"raw,omitempty"`
	RawBase64 string  `json:"raw_base64,omitempty"`
	// Truncated payloads carry the size and SHA-256 of the whole input.
	Truncated bool   `json:"truncated,omitempty"`
	Size      int64  `json:"size,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
}

// New builds a record for payload at pos. now is passed in so callers (and
// tests) decide the clock.
func New(now time.Time, stage string, pos stream.Position, err error, payload []byte) Record {
	r := Record{
		DeadLetter: FormatVersion,
		Time:       now.UTC().Format(time.RFC3339Nano),
		Stage:      stage,
		Source:     pos,
		Error:      err.Error(),
	}
	r.SetPayload(payload)
	return r
}

// SetPayload stores payload as raw text or base64.
func (r *Record) SetPayload(p []byte) {
	if utf8.Valid(p) {
		s := string(p)
		r.Raw = &s
		r.RawBase64 = ""
		return
	}
	r.Raw = nil
	r.RawBase64 = base64.StdEncoding.EncodeToString(p)
}

// SetTruncated marks the payload as the first bytes of a larger input of the
// given size and digest. A prefix cut in the middle of a UTF-8 sequence is
// cut back to the sequence start so it can still be stored as text.
func (r *Record) SetTruncated(prefix []byte, size int64, sum [sha256.Size]byte) {
	for i := 0; i < utf8.UTFMax && len(prefix) > 0 && !utf8.Valid(prefix); i++ {
		prefix = prefix[:len(prefix)-1]
	}
	r.SetPayload(prefix)
	r.Truncated = true
	r.Size = size
	r.SHA256 = hex.EncodeToString(sum[:])
}

// Payload returns the stored payload bytes.
func (r *Record) Payload() ([]byte, error) {
	if r.Raw != nil {
		return []byte(*r.Raw), nil
	}
	if r.RawBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(r.RawBase64)
		if err != nil {
			return nil, fmt.Errorf("dead letter raw_base64: %w", err)
		}
		return b, nil
	}
	return nil, nil
}

var marker = []byte(`"dead_letter"`)

// Parse recognises a dead-letter line. ok is false when line is not one
// (it does not carry the marker key with a known version).
func Parse(line []byte) (r Record, ok bool) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' || !bytes.Contains(trimmed, marker) {
		return Record{}, false
	}
	if err := json.Unmarshal(trimmed, &r); err != nil {
		return Record{}, false
	}
	if r.DeadLetter < 1 || r.DeadLetter > FormatVersion || r.Stage == "" {
		return Record{}, false
	}
	return r, true
}

// Writer records dead letters. Implementations are safe for concurrent use.
type Writer interface {
	// Write stores r durably (as far as the medium allows) before returning.
	Write(r Record) error
}

// NDJSON writes one record per line to an io.Writer.
type NDJSON struct {
	mu  sync.Mutex
	w   io.Writer
	buf bytes.Buffer
}

// NewNDJSON returns a writer of dead-letter lines to w.
func NewNDJSON(w io.Writer) *NDJSON { return &NDJSON{w: w} }

// Write encodes r as one line.
func (d *NDJSON) Write(r Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf.Reset()
	enc := json.NewEncoder(&d.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("dead letter encode: %w", err)
	}
	if _, err := d.w.Write(d.buf.Bytes()); err != nil {
		return fmt.Errorf("dead letter write: %w", err)
	}
	// Writers that can make data durable (the file writer) say so with
	// Sync; it is theirs to know what can be synced.
	if s, ok := d.w.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("dead letter sync: %w", err)
		}
	}
	return nil
}

var linePrefix = []byte(`{"dead_letter":`)

// LooksLike is a cheap test for a line written by this package: the
// marker key comes first. Parse confirms it.
func LooksLike(value []byte) bool {
	return bytes.HasPrefix(value, linePrefix)
}
