// Package deadletter defines the one NDJSON format in which every stage
// records input it could not process, and writers for it.
package deadletter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// Reason is the machine-readable cause of a dead letter: one of a small,
// fixed set, so that it can label metrics and be matched by consumers
// without parsing the error text.
type Reason string

// Reasons.
const (
	ReasonInvalidJSON        Reason = "invalid_json"        // input that is not valid JSON, or a record JSON could not decode
	ReasonTooLarge           Reason = "too_large"           // a value over decode.max_body_bytes (payload truncated)
	ReasonNotObject          Reason = "not_object"          // a record that is not a JSON object
	ReasonBadEnvelope        Reason = "bad_envelope"        // an object whose records or value member is not an array
	ReasonEmpty              Reason = "empty"               // a message or payload that holds no records
	ReasonNoTime             Reason = "no_time"             // an SSPR record without a usable time
	ReasonNormalize          Reason = "normalize"           // any other normalization failure
	ReasonSinkRejected       Reason = "sink_rejected"       // a sink refused the document
	ReasonUnsupportedVersion Reason = "unsupported_version" // a dead letter of a format version this build does not know
	ReasonRedrive            Reason = "redrive"             // a dead-letter line that cannot be re-driven (malformed, bad raw_base64)
	ReasonInvalidDocument    Reason = "invalid_document"    // a re-driven sink dead letter whose document this exporter could not have produced
)

var reasons = []Reason{
	ReasonInvalidJSON, ReasonTooLarge, ReasonNotObject, ReasonBadEnvelope, ReasonEmpty, ReasonNoTime,
	ReasonNormalize, ReasonSinkRejected, ReasonUnsupportedVersion, ReasonRedrive, ReasonInvalidDocument,
}

// Known reports whether r is one of the reasons above.
func (r Reason) Known() bool {
	for _, k := range reasons {
		if r == k {
			return true
		}
	}
	return false
}

// Record is one dead letter.
type Record struct {
	DeadLetter int    `json:"dead_letter"`
	Time       string `json:"time"`
	Stage      string `json:"stage"`
	// Reason is empty only in dead letters written before it existed.
	Reason Reason          `json:"reason,omitempty"`
	Sink   string          `json:"sink,omitempty"`
	Source stream.Position `json:"source"`
	Error  string          `json:"error"`
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
func New(now time.Time, stage string, reason Reason, pos stream.Position, err error, payload []byte) Record {
	r := Record{
		DeadLetter: FormatVersion,
		Time:       now.UTC().Format(time.RFC3339Nano),
		Stage:      stage,
		Reason:     reason,
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

// ErrNotDeadLetter is returned by Decode for a line that is not a dead letter.
var ErrNotDeadLetter = errors.New("not a dead letter")

// VersionError is a dead letter of a format version this build does not
// know: its layout must not be guessed at.
type VersionError struct{ Version int }

func (e *VersionError) Error() string {
	return fmt.Sprintf("dead letter format version %d is not supported (this build reads version %d)", e.Version, FormatVersion)
}

// Decode reads a dead-letter line. It returns an error wrapping
// ErrNotDeadLetter when line is not one (not a JSON object with the marker
// key and a stage), and a *VersionError when its version is unknown.
func Decode(line []byte) (Record, error) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' || !bytes.Contains(trimmed, marker) {
		return Record{}, ErrNotDeadLetter
	}
	// The version is read alone first: a later version may have changed
	// the type of any other key.
	var head struct {
		DeadLetter *int `json:"dead_letter"`
	}
	if err := json.Unmarshal(trimmed, &head); err != nil || head.DeadLetter == nil {
		return Record{}, fmt.Errorf("%w: no dead_letter version", ErrNotDeadLetter)
	}
	if v := *head.DeadLetter; v > FormatVersion {
		return Record{}, &VersionError{Version: v}
	} else if v < 1 {
		return Record{}, fmt.Errorf("%w: dead_letter version %d", ErrNotDeadLetter, v)
	}
	var r Record
	if err := json.Unmarshal(trimmed, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrNotDeadLetter, err)
	}
	if r.Stage == "" {
		return Record{}, fmt.Errorf("%w: no stage", ErrNotDeadLetter)
	}
	return r, nil
}

// Parse recognises a dead-letter line. ok is false when line is not one
// (it does not carry the marker key with a known version).
func Parse(line []byte) (r Record, ok bool) {
	r, err := Decode(line)
	return r, err == nil
}

// Writer records dead letters. Implementations are safe for concurrent use.
type Writer interface {
	// Write stores r durably (as far as the medium allows) before
	// returning; ctx bounds how long it may try.
	Write(ctx context.Context, r Record) error
}

// NDJSON writes one record per line to an io.Writer.
type NDJSON struct {
	mu  sync.Mutex
	w   io.Writer
	buf bytes.Buffer
}

// NewNDJSON returns a writer of dead-letter lines to w.
func NewNDJSON(w io.Writer) *NDJSON { return &NDJSON{w: w} }

// Write encodes r as one line. A local write is not interrupted: ctx is
// not consulted.
func (d *NDJSON) Write(_ context.Context, r Record) error {
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
