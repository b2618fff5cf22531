package bulk

import (
	"bytes"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// EncodeEvent writes d's action and source lines, as Write does.
func EncodeEvent(b *bytes.Buffer, index string, d *ecs.Event) { encodeEvent(b, index, d) }

// SetNow replaces the sink's clock.
func (s *Sink) SetNow(now func() time.Time) { s.now = now }
