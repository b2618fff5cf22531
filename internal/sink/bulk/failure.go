package bulk

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// engineError is the error object of the engines' answers.
type engineError struct {
	Type     string       `json:"type"`
	Reason   string       `json:"reason"`
	CausedBy *engineError `json:"caused_by,omitempty"`
}

func (e *engineError) String() string {
	if e == nil || e.Type == "" {
		return ""
	}
	s := e.Type + ": " + e.Reason
	if e.CausedBy != nil && e.CausedBy.Reason != "" {
		s += " (caused by " + e.CausedBy.Type + ": " + e.CausedBy.Reason + ")"
	}
	return s
}

func errType(e *engineError) string {
	if e == nil {
		return ""
	}
	return e.Type
}

// Failure is a failed answer's error, with every form of the configured
// credentials taken out: a proxy, or a node's own message, may repeat the
// request and its Authorization header.
type Failure struct {
	Type   string // the engine's error type; "" when the body is not its error envelope
	Reason string // type, reason and cause, as the engine wrote them
	Desc   string // "HTTP <status>" and the reason, or the start of the body
	// Envelope reports that the body is the engines' error envelope with
	// the answer's own status repeated in it, as nodes write it and a
	// proxy's page does not.
	Envelope bool
}

// DescribeFailure reads the error envelope of a failed answer. The body
// is bounded so that a proxy's HTML page cannot flood a log line, and
// redacted before it is cut, so no part of a secret is left at the cut.
func DescribeFailure(status int, body io.Reader, red *secret.Redactor) Failure {
	raw, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var env struct {
		Error  json.RawMessage `json:"error"`
		Status int             `json:"status"`
	}
	var e engineError
	if json.Unmarshal(raw, &env) == nil && len(env.Error) > 0 {
		if json.Unmarshal(env.Error, &e) != nil {
			// Some answers carry the error as a plain string.
			var s string
			if json.Unmarshal(env.Error, &s) == nil {
				e = engineError{Type: "error", Reason: s}
			}
		}
	}
	f := Failure{Desc: fmt.Sprintf("HTTP %d", status), Envelope: e.Type != "" && env.Status == status}
	if e.Type != "" {
		f.Type, f.Reason = red.Redact(e.Type), red.Redact(e.String())
		f.Desc += " " + f.Reason
	} else if t := strings.TrimSpace(red.Redact(string(raw))); t != "" {
		if len(t) > 200 {
			t = strings.ToValidUTF8(t[:200], "") + "..."
		}
		f.Desc += " " + t
	}
	return f
}

// redactedError is err with the credentials taken out of its message; it
// unwraps to err, so errors.Is still sees a context's end.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactErr returns err with every credential red knows taken out of its
// message.
func RedactErr(red *secret.Redactor, err error) error {
	if err == nil {
		return nil
	}
	if msg := red.Redact(err.Error()); msg != err.Error() {
		return &redactedError{msg: msg, err: err}
	}
	return err
}
