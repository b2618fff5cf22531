package kafka

import (
	"context"
	"fmt"
	"strconv"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
)

// topicPartition identifies a partition.
type topicPartition struct {
	topic string
	id    int
}

// fetchRetry spaces the fetches of a partition that fails to be read.
var fetchRetry = retry.Config{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second}

// session is one ownership of a partition: one generation's worker, with
// its reader.
type session struct {
	s       *Source
	p       *partitioned.Partition[topicPartition]
	gen     *kgo.Generation
	genDone <-chan struct{}
	r       *kgo.Reader
	backoff *retry.Backoff // between failed fetches
}

// runPartition reads one assigned partition until the generation ends,
// handing out one batch at a time. It must not return before the
// generation ends: the library ends a generation when any worker returns.
func (s *Source) runPartition(ctx context.Context, gen *kgo.Generation, topic string, pa kgo.PartitionAssignment) {
	p := s.parts.Partition(topicPartition{topic, pa.ID})
	r := s.newReader(topic, pa.ID)
	// Before the reader's first fetch this only records where to start.
	_ = r.SetOffset(pa.Offset)
	sess := &session{s: s, p: p, gen: gen, genDone: ctx.Done(), r: r, backoff: fetchRetry.Backoff()}
	own := s.parts.Own(p, sess, pa.Offset)
	s.log.Debug("kafka partition assigned", "topic", topic, "partition", pa.ID, "generation", gen.ID, "offset", offsetString(pa.Offset))

	// Fetching stops when the generation ends or when Close begins.
	rctx, rcancel := s.parts.UntilClose(ctx)
	if err := own.Serve(rctx); err != nil {
		s.log.Debug("kafka partition not read on", "topic", topic, "partition", pa.ID, "error", err)
	}
	rcancel()
	if err := r.Close(); err != nil {
		s.log.Debug("kafka reader close", "topic", topic, "partition", pa.ID, "error", err)
	}
	// Closing, Release keeps the generation (and so the right to commit)
	// until Close has waited for the acknowledgements. A revoked partition
	// gives its batch in flight up to revoke_grace, so that its commit
	// still counts under the generation that read it and the next owner
	// does not read it again.
	if !own.Release(ctx, s.cfg.RevokeGrace) {
		s.log.Debug("kafka partition revoked with a batch still unacknowledged; the next owner reads it again",
			"topic", topic, "partition", pa.ID)
	}
	p.Heal()
	s.log.Debug("kafka partition released", "topic", topic, "partition", pa.ID, "generation", gen.ID)
}

// Receive fetches the next messages, trying again after a failure until
// ctx ends: a partition that cannot be read is reported by Ready and the
// log meanwhile.
func (ss *session) Receive(ctx context.Context) (partitioned.Messages[kgo.Message], error) {
	for {
		msgs, err := ss.s.fetch(ctx, ss.r)
		if len(msgs) > 0 {
			ss.backoff.Reset()
			ss.p.Heal()
			return ss.s.messages(ss.p.Key(), msgs), nil
		}
		if ctx.Err() != nil {
			return partitioned.Messages[kgo.Message]{}, ctx.Err()
		}
		ss.p.Fail(err, time.Now(), 0)
		tp := ss.p.Key()
		ss.s.warn(ss.s.readWarn, "kafka partition read failed; retrying",
			"topic", tp.topic, "partition", tp.id, "error", err.Error()+kafkaconn.Hint(err))
		if !retry.Wait(ctx, ss.backoff.Next()) {
			return partitioned.Messages[kgo.Message]{}, ctx.Err()
		}
	}
}

// Rewind makes the reader read again from the offset from.
func (ss *session) Rewind(from int64) error { return ss.r.SetOffset(from) }

func (ss *session) generationEnded() bool {
	select {
	case <-ss.genDone:
		return true
	default:
		return false
	}
}

func (s *Source) newReader(topic string, partition int) *kgo.Reader {
	return kgo.NewReader(kgo.ReaderConfig{
		Brokers:       s.cfg.Brokers,
		Topic:         topic,
		Partition:     partition,
		Dialer:        s.dialer,
		QueueCapacity: s.cfg.Batch.MaxMessages,
		MinBytes:      1,
		MaxBytes:      s.cfg.Batch.FetchMaxBytes,
		// A short long-poll keeps Close and revocation prompt on idle
		// partitions; a busy partition answers at once anyway.
		MaxWait:         time.Second,
		ReadLagInterval: -1,
		ErrorLogger: kgo.LoggerFunc(func(format string, a ...any) {
			s.warn(s.readWarn, "kafka partition reader: "+fmt.Sprintf(format, a...))
		}),
	})
}

// fetch waits for a first message, then up to batch.max_wait for more, up
// to batch.max_messages.
func (s *Source) fetch(ctx context.Context, r *kgo.Reader) ([]kgo.Message, error) {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := make([]kgo.Message, 1, min(s.cfg.Batch.MaxMessages, 64))
	msgs[0] = m
	if s.cfg.Batch.MaxMessages == 1 {
		return msgs, nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.Batch.MaxWait)
	defer cancel()
	for len(msgs) < s.cfg.Batch.MaxMessages {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			// Hand out what arrived; a lasting read error shows again on the
			// next fetch.
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func offsetString(off int64) string {
	switch off {
	case kgo.FirstOffset:
		return "earliest"
	case kgo.LastOffset:
		return "latest"
	}
	return strconv.FormatInt(off, 10)
}
