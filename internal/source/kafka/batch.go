package kafka

import (
	"context"
	"errors"
	"strconv"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// messages makes one partition's messages the bodies of a batch.
func (s *Source) messages(tp topicPartition, msgs []kgo.Message) partitioned.Messages[kgo.Message] {
	bodies := make([]stream.Body, len(msgs))
	partStr := strconv.Itoa(tp.id)
	for i, m := range msgs {
		bodies[i] = stream.Body{Data: m.Value, Pos: stream.Position{
			Kind: Kind, Topic: tp.topic, Partition: partStr, Offset: strconv.FormatInt(m.Offset, 10),
		}}
	}
	last := msgs[len(msgs)-1]
	return partitioned.Messages[kgo.Message]{
		Bodies: bodies, First: msgs[0].Offset, Last: last.Offset, End: last.HighWaterMark, Mark: last,
	}
}

// Commit commits the offset after last. A failed commit loses nothing: a
// later commit covers it, or the next owner reads these messages again.
func (ss *session) Commit(_ context.Context, last kgo.Message) error {
	tp, next := ss.p.Key(), last.Offset+1
	err := ss.gen.CommitOffsets(map[string]map[int]int64{tp.topic: {tp.id: next}})
	if err == nil {
		return nil
	}
	if ss.generationEnded() || isRebalance(err) {
		ss.s.log.Debug("kafka commit refused during a rebalance", "topic", tp.topic, "partition", tp.id, "offset", next, "error", err)
	} else {
		ss.s.warn(ss.s.commitWarn, "kafka offset commit failed; a later commit covers it",
			"topic", tp.topic, "partition", tp.id, "offset", next, "error", err.Error()+kafkaconn.Hint(err))
	}
	return err
}

func isRebalance(err error) bool {
	return errors.Is(err, kgo.RebalanceInProgress) || errors.Is(err, kgo.IllegalGeneration) ||
		errors.Is(err, kgo.UnknownMemberId) || errors.Is(err, kgo.NotCoordinatorForGroup) ||
		errors.Is(err, kgo.FencedInstanceID)
}
