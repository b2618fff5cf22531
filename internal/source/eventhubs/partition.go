package eventhubs

import (
	"context"
	"errors"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"

	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
)

// errRewind ends a session after a batch was not delivered: the processor
// claims the partition again and reads it from the last checkpoint.
var errRewind = errors.New("a batch was not delivered; reading again from the checkpoint")

// session is one ownership of a partition by this instance: from the
// partition client's creation until it is closed.
type session struct {
	s  *Source
	p  *partitioned.Partition[string]
	pc *azeventhubs.ProcessorPartitionClient
}

// runPartition receives one partition's events until the partition client
// fails or is taken over, handing out one batch at a time.
// runDone closes when the processor stops (it closes its partition clients
// first, so their errors then are expected).
func (s *Source) runPartition(ctx context.Context, pc *azeventhubs.ProcessorPartitionClient, runDone <-chan struct{}) {
	id := pc.PartitionID()
	p := s.parts.Partition(id)
	own := s.parts.Own(p, &session{s: s, p: p, pc: pc}, -1)
	// One line per claim and release, with the owner id of the checkpoint
	// store's ownership blobs, so that the logs of all instances tell who
	// held which partition when.
	owner := s.consumer.InstanceID()
	s.log.Info("event hubs partition claimed", "hub", s.hub, "partition", id, "owner", owner, "consumer_group", s.cfg.ConsumerGroup)
	reason := s.endReason(p, own.Serve(ctx), runDone)
	// Closing: the partition stays ours until the processor stops, so that
	// late acks still checkpoint.
	own.Release(ctx, 0)
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_ = pc.Close(closeCtx) // the link is gone or going; nothing to report
	cancel()
	s.log.Info("event hubs partition released", "hub", s.hub, "partition", id, "owner", owner, "consumer_group", s.cfg.ConsumerGroup, "reason", reason)
}

// endReason says why a session ended with err (nil: stopped) and records a
// receive failure.
func (s *Source) endReason(p *partitioned.Partition[string], err error, runDone <-chan struct{}) string {
	var ehErr *azeventhubs.Error
	switch {
	case err == nil:
		return "stopped"
	case errors.Is(err, errRewind):
		return err.Error()
	case errors.As(err, &ehErr) && ehErr.Code == azeventhubs.ErrorCodeOwnershipLost:
		p.Heal() // reading it is another instance's business now
		return "ownership moved to another instance"
	case processorStopping(runDone):
		return "processor stopped"
	}
	// The processor claims the partition again on its next round.
	s.partitionFailed(p, err.Error())
	return "receive failed"
}

// Receive waits up to ReceiveWait for up to ReceiveBatchSize events.
func (ss *session) Receive(ctx context.Context) (partitioned.Messages[*azeventhubs.ReceivedEventData], error) {
	var none partitioned.Messages[*azeventhubs.ReceivedEventData]
	rctx, cancel := context.WithTimeout(ctx, ss.s.cfg.ReceiveWait)
	defer cancel()
	events, err := ss.pc.ReceiveEvents(rctx, ss.s.cfg.ReceiveBatchSize, nil)
	if err != nil && len(events) == 0 && rctx.Err() != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return none, nil // nothing arrived in time
	}
	if err != nil || len(events) == 0 {
		return none, err
	}
	ss.s.partitionReadable(ss.p)
	return ss.s.messages(ss.p.Key(), events), nil
}

// Rewind gives the partition up: the processor's next claim reads it from
// the last checkpoint.
func (ss *session) Rewind(int64) error { return errRewind }

// processorStopping reports whether the processor stops within a moment.
func processorStopping(runDone <-chan struct{}) bool {
	select {
	case <-runDone:
		return true
	case <-time.After(time.Second):
		return false
	}
}
