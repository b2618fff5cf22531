package partitioned

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Session is one ownership of a partition as the source's client sees it:
// what the skeleton needs from an Event Hubs partition client or a Kafka
// reader and its group generation. Positions are sequence numbers or
// offsets.
type Session[M any] interface {
	// Receive waits for the partition's next messages. It returns none and
	// a nil error when nothing arrived in time; an error ends the session.
	Receive(ctx context.Context) (Messages[M], error)
	// Rewind makes the next Receive read again from the position from,
	// after a batch was not delivered; an error ends the session.
	Rewind(from int64) error
	// Commit records that the partition is delivered up to and including
	// last. An error is the client's to report: the skeleton counts it, and
	// a later commit covers the batch.
	Commit(ctx context.Context, last M) error
}

// Messages is what one Receive got, in order.
type Messages[M any] struct {
	Bodies      []stream.Body
	First, Last int64 // positions of the first and the last message
	// End is the partition's end as the receive saw it (see
	// Partition.SetEnd), or -1 when it did not tell.
	End int64
	// Mark is what Commit needs to record the batch: its last message.
	Mark M
}

// Ownership is one session of a partition, from Own to End.
type Ownership[K comparable, M any] struct {
	src   *Source[K, M]
	p     *Partition[K]
	sess  Session[M]
	ended atomic.Bool // acknowledgements no longer commit

	mu     sync.Mutex
	rewind int64 // where to read again from, or -1
}

// Own begins a session of p. resume is the position the session reads
// first when the source knows it (a committed offset), or negative.
func (s *Source[K, M]) Own(p *Partition[K], sess Session[M], resume int64) *Ownership[K, M] {
	o := &Ownership[K, M]{src: s, p: p, sess: sess, rewind: -1}
	p.own(o, resume)
	return o
}

// Serve reads the partition through its session and hands out its
// batches, one at a time, until ctx ends, Close begins or the session
// fails: it returns the session's error, or nil. The next batch of a
// partition is received only after the previous one, perhaps of an earlier
// session, was acknowledged.
func (o *Ownership[K, M]) Serve(ctx context.Context) error {
	s, p := o.src, o.p
	held := false // whether this loop holds the partition's turn
	defer func() {
		if held {
			s.free(p)
		}
	}()
	for {
		if !held {
			if !s.take(ctx, p) {
				return nil
			}
			held = true
		}
		if ctx.Err() != nil || s.Closing() {
			return nil
		}
		// Checked before reading on: a batch not delivered is read again.
		if from := o.takeRewind(); from >= 0 {
			if err := o.sess.Rewind(from); err != nil {
				return err
			}
			p.onRewind()
		}
		m, err := o.sess.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(m.Bodies) == 0 || ctx.Err() != nil {
			// Nothing yet, or revoked while the batch filled: the next
			// owner reads it.
			continue
		}
		// The turn now belongs to the batch: its acknowledgement frees it.
		held = false
		if !o.handOut(ctx, m) {
			return nil
		}
	}
}

// Release ends the ownership. Once Close has begun it first waits for ctx
// to end, so that the session keeps the right to commit while Close waits
// for the acknowledgements. Then it gives the partition's batch still out,
// if any, up to grace to be acknowledged (or until Close stops waiting),
// so that its commit still counts under this session; it reports false
// when grace ran out first.
func (o *Ownership[K, M]) Release(ctx context.Context, grace time.Duration) bool {
	if o.src.Closing() {
		<-ctx.Done()
	}
	acked := o.awaitAck(grace)
	o.ended.Store(true)
	o.p.disown(o)
	return acked
}

func (o *Ownership[K, M]) awaitAck(grace time.Duration) bool {
	if grace <= 0 {
		return true
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case o.p.slot <- struct{}{}:
		<-o.p.slot
		return true
	case <-o.src.abandon:
		return true
	case <-t.C:
		return false
	}
}

func (o *Ownership[K, M]) setRewind(pos int64) {
	o.mu.Lock()
	if o.rewind < 0 || pos < o.rewind {
		o.rewind = pos
	}
	o.mu.Unlock()
}

func (o *Ownership[K, M]) takeRewind() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	pos := o.rewind
	o.rewind = -1
	return pos
}

// take waits for the partition's turn, then for a place in the memory
// budget; it reports false when ctx ended first.
func (s *Source[K, M]) take(ctx context.Context, p *Partition[K]) bool {
	select {
	case p.slot <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	if s.memory == nil {
		return true
	}
	select {
	case s.memory <- struct{}{}:
		return true
	case <-ctx.Done():
		<-p.slot
		return false
	}
}

// free gives back what take took.
func (s *Source[K, M]) free(p *Partition[K]) {
	if s.memory != nil {
		<-s.memory
	}
	<-p.slot
}

// handOut passes m to Read as a batch; it reports false when the batch
// could not be handed out (closing, or ctx ended) and was dropped.
func (o *Ownership[K, M]) handOut(ctx context.Context, m Messages[M]) bool {
	s := o.src
	if !s.out.add() {
		s.free(o.p)
		return false
	}
	b, drop := o.batch(m)
	select {
	case s.batches <- b:
		return true
	case <-ctx.Done():
	case <-s.stopCtx.Done():
	}
	drop()
	return false
}

// batch makes m a batch whose Ack runs once: it frees the partition's turn
// only after the commit was tried, so that commits never go back, and
// records what it acknowledged in the partition. drop frees the turn of a
// batch that was never handed out.
func (o *Ownership[K, M]) batch(m Messages[M]) (b stream.Batch, drop func()) {
	s, p := o.src, o.p
	p.onReceived(len(m.Bodies), m.Last, m.End)
	var once atomic.Bool
	release := func() {
		s.free(p)
		s.out.done()
	}
	drop = func() {
		if once.CompareAndSwap(false, true) {
			release()
		}
	}
	ack := func(ctx context.Context, err error) error {
		if !once.CompareAndSwap(false, true) {
			return fmt.Errorf("%s: batch acknowledged twice", s.opts.Name)
		}
		defer release()
		if err != nil {
			// Not delivered: read the same messages again.
			o.setRewind(m.First)
			return nil
		}
		p.onProcessed(m.Last)
		if o.ended.Load() {
			// The partition was let go: the next owner resumes from the last
			// commit, and a commit from an ended session would move it back
			// or be refused.
			return nil
		}
		if o.sess.Commit(ctx, m.Mark) != nil {
			// Delivered; only the commit is behind. A later one covers it,
			// and until then a restart reads these messages again.
			p.onCommitError()
			return nil
		}
		p.onCommitted(m.Last, time.Now())
		return nil
	}
	return stream.Batch{Bodies: m.Bodies, Ack: ack}, drop
}
