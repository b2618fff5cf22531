// Package deliver hands alerts to their outputs: the alerts index, a
// Kafka topic, an NDJSON file and a webhook. With an alerts index, an
// alert already stored there is sent nowhere again, whichever instance or
// run stored it; an alert is stored only after every other output took
// it, so a failure or a crash in between sends it again (at least once).
package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/alertindex"
)

// Output is one destination of alerts other than the index.
type Output interface {
	Name() string
	// Send returns nil only when every alert is durably accepted.
	Send(ctx context.Context, alerts []detect.Alert) error
	Close(ctx context.Context) error
}

// Outputs are every destination of one evaluation loop.
type Outputs struct {
	Index   *alertindex.Index // nil: no alerts index
	Outputs []Output
	// Memory, without an index, remembers the ids this process sent for
	// as long, so that overlapping evaluations do not send them again; a
	// restart or another instance does send them again.
	Memory time.Duration

	sent map[string]time.Time
}

// Deliver sends the alerts not delivered before and returns them.
func (o *Outputs) Deliver(ctx context.Context, alerts []detect.Alert, now time.Time) ([]detect.Alert, error) {
	fresh := alerts
	if o.Index != nil {
		stored, err := o.Index.Stored(ctx, alerts)
		if err != nil {
			return nil, err
		}
		fresh = without(alerts, func(id string) bool { return stored[id] })
	} else if o.Memory > 0 {
		if o.sent == nil {
			o.sent = map[string]time.Time{}
		}
		for id, at := range o.sent {
			if now.Sub(at) > o.Memory {
				delete(o.sent, id)
			}
		}
		fresh = without(alerts, func(id string) bool { _, ok := o.sent[id]; return ok })
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	for _, out := range o.Outputs {
		if err := out.Send(ctx, fresh); err != nil {
			return nil, fmt.Errorf("alerts to %s: %w", out.Name(), err)
		}
	}
	if o.Index != nil {
		if err := o.Index.Create(ctx, fresh); err != nil {
			return nil, err
		}
	} else if o.sent != nil {
		for i := range fresh {
			o.sent[fresh[i].ID] = now
		}
	}
	return fresh, nil
}

// Close closes every output.
func (o *Outputs) Close(ctx context.Context) error {
	var errs []error
	for _, out := range o.Outputs {
		if err := out.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", out.Name(), err))
		}
	}
	if o.Index != nil {
		o.Index.Client.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

func without(alerts []detect.Alert, drop func(id string) bool) []detect.Alert {
	var out []detect.Alert
	for _, a := range alerts {
		if !drop(a.ID) {
			out = append(out, a)
		}
	}
	return out
}

// encode is the JSON document of each alert, newline-terminated, with
// "&" and "<" as themselves ("MITRE ATT&CK").
func encode(alerts []detect.Alert) ([][]byte, error) {
	out := make([][]byte, 0, len(alerts))
	for i := range alerts {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(alerts[i]); err != nil {
			return nil, fmt.Errorf("alert %s: %w", alerts[i].ID, err)
		}
		out = append(out, b.Bytes())
	}
	return out, nil
}
