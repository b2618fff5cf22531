// Package backfill reads past audit records (from Microsoft Graph or from
// storage-account archives) into the same pipeline and outputs as the
// live exporter, resumably.
//
// A Reader splits its input into units (a Graph time slice, an archive
// blob) and each unit into chunks, in order, and hands them to a Tracker.
// The Tracker is the pipeline's source: it counts what every chunk's
// records become (with the pipeline's own decoder), hands the pipeline
// only the records that can be SSPR events (or must be dead-lettered), and
// checkpoints a unit in the state file only as far as the contiguous run
// of its chunks that the outputs acknowledged. Killed at any moment, a
// backfill run again continues from there: nothing acknowledged is lost,
// and what is read twice is stored once, the outputs being idempotent.
package backfill

import (
	"context"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Unit is one piece of input checkpointed on its own.
type Unit struct {
	Key    string // unique in the state file: a blob's name, a slice's interval
	Tenant string
	// From and To are the interval the unit covers: a slice, or the hour
	// an archive blob was filed under.
	From, To time.Time
	// Version identifies the content: a blob's ETag, the slice's queries.
	// A unit checkpointed with another version is read again whole.
	Version  string
	Modified time.Time
	Size     int64 // bytes, when known
}

// Resume is where reading a unit continues: after Line lines, at byte
// Offset.
type Resume struct {
	Line, Offset int64
}

// Chunk is the next part of a unit's input. A unit's chunks are emitted
// in order, from one goroutine.
type Chunk struct {
	Unit   string // the Unit's Key
	Bodies []stream.Body
	// Hours, when set, is the hour (UTC start) each body's records belong
	// to; nil puts them all in the unit's first hour.
	Hours []time.Time
	// Bytes is how much input the chunk consumed, for progress.
	Bytes int64
	// End is where the unit resumes once this chunk and every earlier one
	// are delivered; nil when a unit cannot be resumed in the middle (it
	// is read again whole).
	End *Resume
	// Final is set on the unit's last chunk (which may hold no bodies).
	Final bool
	// Release, when set, is called once the chunk's bodies are no longer
	// used.
	Release func()
}

// Feed receives a Reader's units and chunks.
type Feed interface {
	// Begin registers a unit before its chunks and says where reading
	// starts; false when the state holds it complete: nothing is read.
	Begin(u Unit) (Resume, bool)
	// Emit hands over a chunk of a begun unit. It blocks while the
	// pipeline is behind and fails once the backfill stops.
	Emit(ctx context.Context, c Chunk) error
	// Tenant declares a tenant whose input was found, so that it is
	// reported even when it has no data in the range.
	Tenant(id string)
	// Planned says every unit of the range has been begun.
	Planned()
}

// Reader reads the units of a backfill into a Feed.
type Reader interface {
	// Read returns nil once every unit has been emitted, or why it could
	// not go on.
	Read(ctx context.Context, feed Feed) error
}
