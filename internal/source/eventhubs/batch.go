package eventhubs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// messages makes one partition's events the bodies of a batch.
func (s *Source) messages(partition string, events []*azeventhubs.ReceivedEventData) partitioned.Messages[*azeventhubs.ReceivedEventData] {
	bodies := make([]stream.Body, len(events))
	for i, e := range events {
		seq := e.SequenceNumber
		bodies[i] = stream.Body{Data: e.Body, Pos: stream.Position{
			Kind: Kind, Topic: s.hub, Partition: partition, Offset: e.Offset, Sequence: &seq,
		}}
	}
	last := events[len(events)-1]
	return partitioned.Messages[*azeventhubs.ReceivedEventData]{
		Bodies: bodies, First: events[0].SequenceNumber, Last: last.SequenceNumber, End: -1, Mark: last,
	}
}

// Commit checkpoints the partition at last. A checkpoint not written loses
// nothing: the documents are delivered, a later batch's checkpoint covers
// this one, and until then a restart reads these events again (at least
// once). It shows in readiness and the log, not as a failed delivery.
func (ss *session) Commit(ctx context.Context, last *azeventhubs.ReceivedEventData) error {
	s := ss.s
	err := ss.pc.UpdateCheckpoint(ctx, last, nil)
	if err == nil {
		s.parts.ClearReady(isCheckpointError)
		return nil
	}
	err = secret.RedactError(compactStorageError(err, s.cfg.CheckpointStore.auth()))
	id := ss.p.Key()
	s.parts.SetReady(checkpointError{fmt.Errorf("eventhubs checkpoint %s partition %s sequence %d: %w", s.hub, id, last.SequenceNumber, err)})
	level := slog.LevelDebug
	if ok, _ := s.checkpointWarn.Allow(time.Now()); ok {
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "event hubs checkpoint not written; a later one will cover it", "hub", s.hub, "partition", id, "sequence_number", last.SequenceNumber, "error", err)
	return err
}
