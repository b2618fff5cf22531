// Package kafka is the Kafka source (any Kafka cluster, or the Kafka
// endpoint of Azure Event Hubs): a consumer group member that reads each
// assigned partition on its own, hands out one partition's messages at a
// time as a batch, and commits a batch's offsets only once it is
// acknowledged.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Kind is the Position.Kind of Kafka bodies.
const Kind = "kafka"

// Source reads the configured topics as a member of a consumer group.
type Source struct {
	cfg    Config
	log    *slog.Logger
	dialer *kgo.Dialer
	group  *kgo.ConsumerGroup
	meta   *kgo.Client // topic metadata for the partition watch

	batches chan stream.Batch // partition workers hand batches to Read
	// stopping is closed when Close begins: no new batches. stopCtx is the
	// same signal as a context, to interrupt fetches.
	stopping   chan struct{}
	stopCtx    context.Context
	stopCancel context.CancelFunc
	// abandon is closed once Close stops waiting for acknowledgements, so
	// that revoked partitions stop waiting too.
	abandon  chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup // group loop and stats loop
	inflight sync.WaitGroup // batches handed out and not yet acknowledged
	// handMu orders inflight.Add before Close's inflight.Wait: once closing
	// is set no batch is added.
	handMu  sync.Mutex
	closing bool

	closeOnce sync.Once
	closeErr  error

	groupWarn  logLimiter
	readWarn   logLimiter
	commitWarn logLimiter

	mu         sync.Mutex
	ready      error
	topicErr   error // a configured topic is missing or not readable
	generation int32
	partitions map[topicPartition]*partition
}

type topicPartition struct {
	topic string
	id    int
}

var (
	_ stream.Source    = (*Source)(nil)
	_ stream.Readiness = (*Source)(nil)
)

// errStarting is the readiness before the group was first joined.
var errStarting = errors.New("kafka: starting, not yet a member of the consumer group")

// New builds the consumer group and starts joining it in the background; it
// does not wait for the brokers to be reachable (see Ready).
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("kafka source config: %w", errors.Join(errs...))
	}
	if logger == nil {
		logger = slog.Default()
	}
	dialer, err := kafkaconn.Dialer(cfg.ClientID, cfg.DialTimeout, cfg.SASL, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	s := &Source{
		cfg:        cfg,
		log:        logger,
		dialer:     dialer,
		batches:    make(chan stream.Batch),
		stopping:   make(chan struct{}),
		abandon:    make(chan struct{}),
		ready:      errStarting,
		partitions: map[topicPartition]*partition{},
	}
	s.groupWarn.every = cfg.ErrorLogInterval
	s.readWarn.every = cfg.ErrorLogInterval
	s.commitWarn.every = cfg.ErrorLogInterval
	s.stopCtx, s.stopCancel = context.WithCancel(context.Background())
	transport, err := kafkaconn.Transport(cfg.ClientID, cfg.DialTimeout, cfg.SASL, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	s.meta = &kgo.Client{Addr: kgo.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: transport}

	start := kgo.FirstOffset
	if cfg.StartOffset == StartLatest {
		start = kgo.LastOffset
	}
	s.group, err = kgo.NewConsumerGroup(kgo.ConsumerGroupConfig{
		ID:                cfg.GroupID,
		Brokers:           cfg.Brokers,
		Dialer:            dialer,
		Topics:            cfg.Topics,
		GroupBalancers:    []kgo.GroupBalancer{kgo.RangeGroupBalancer{}, kgo.RoundRobinGroupBalancer{}},
		HeartbeatInterval: cfg.HeartbeatInterval,
		// The library's own watch ends the generation at once when a topic
		// is missing, which turns into a tight rejoin loop; watchTopics
		// does the same job without that.
		WatchPartitionChanges: false,
		SessionTimeout:        cfg.SessionTimeout,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		JoinGroupBackoff:      cfg.RejoinBackoff,
		StartOffset:           start,
		// Join failures come back from Next, where they are logged once per
		// error_log_interval; the library's own copies go to debug.
		ErrorLogger: kgo.LoggerFunc(func(format string, a ...any) {
			logger.Debug("kafka group: " + fmt.Sprintf(format, a...))
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("kafka source: consumer group: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go s.run(ctx)
	go s.statsLoop(ctx)
	return s, nil
}

// Read returns the next batch of one partition. It returns io.EOF once
// Close has begun.
func (s *Source) Read(ctx context.Context) (stream.Batch, error) {
	select {
	case b := <-s.batches:
		return b, nil
	case <-s.stopping:
		return stream.Batch{}, io.EOF
	case <-ctx.Done():
		return stream.Batch{}, ctx.Err()
	}
}

// Ready reports whether the instance is a member of the group and every
// partition it owns can be read.
func (s *Source) Ready() error {
	s.mu.Lock()
	err := s.ready
	if err == nil {
		err = s.topicErr
	}
	parts := s.partitionsLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, p := range parts {
		p.mu.Lock()
		owned, ferr := p.session != nil, p.fetchErr
		p.mu.Unlock()
		if owned && ferr != nil {
			return fmt.Errorf("kafka topic %s partition %d: %w%s", p.topic, p.id, ferr, kafkaconn.Hint(ferr))
		}
	}
	return nil
}

func (s *Source) setReady(err error) {
	s.mu.Lock()
	s.ready = err
	s.mu.Unlock()
}

// Close stops handing out batches, waits (within ctx) for the batches
// already handed out to be acknowledged and committed, then leaves the
// group and closes every connection.
func (s *Source) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.handMu.Lock()
		s.closing = true
		s.handMu.Unlock()
		close(s.stopping)
		s.stopCancel()
		acked := make(chan struct{})
		go func() {
			s.inflight.Wait()
			close(acked)
		}()
		var errs []error
		select {
		case <-acked:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("kafka source close: batches still unacknowledged (they will be read again): %w", ctx.Err()))
		}
		close(s.abandon)
		s.cancel()
		// Ends the generation (the partition workers return) and leaves the
		// group, so that the partitions move to other members at once.
		if err := s.group.Close(); err != nil {
			errs = append(errs, fmt.Errorf("kafka source close: consumer group: %w", err))
		}
		s.wg.Wait()
		if t, ok := s.meta.Transport.(*kgo.Transport); ok {
			t.CloseIdleConnections()
		}
		s.setReady(errors.New("kafka: source closed"))
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// run joins generation after generation and starts a worker for every
// assigned partition. Next returns a generation only after the previous one
// ended and all its workers returned.
func (s *Source) run(ctx context.Context) {
	defer s.wg.Done()
	var failingSince time.Time // start of the current run of join failures
	for {
		gen, err := s.group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kgo.ErrGroupClosed) {
				return
			}
			if errors.Is(err, kgo.RebalanceInProgress) {
				// The normal way a rebalance shows itself; the member rejoins.
				s.log.Debug("kafka group rebalancing", "group", s.cfg.GroupID)
				continue
			}
			s.setReady(fmt.Errorf("kafka group %s: %w%s", s.cfg.GroupID, err, kafkaconn.Hint(err)))
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			args := []any{"group", s.cfg.GroupID, "brokers", s.cfg.Brokers, "error", err.Error() + kafkaconn.Hint(err)}
			var kerr kgo.Error
			if errors.As(err, &kerr) && kerr.Temporary() && time.Since(failingSince) < s.cfg.ErrorLogInterval {
				// Coordinator moving or still loading (a fresh cluster creates
				// its offsets topic on the first join): normal for a moment.
				s.log.Debug("kafka consumer group not available yet; retrying", args...)
				continue
			}
			s.groupWarn.log(s.log, "kafka consumer group cannot be joined; retrying", args...)
			continue
		}
		s.mu.Lock()
		s.ready = nil
		s.generation = gen.ID
		s.mu.Unlock()
		if !failingSince.IsZero() {
			s.groupWarn.reset()
			failingSince = time.Time{}
		}
		s.log.Info("kafka group joined", "group", s.cfg.GroupID, "generation", gen.ID, "assigned", describeAssignments(gen.Assignments))
		gen.Start(func(gctx context.Context) { s.watchTopics(gctx) })
		for topic, parts := range gen.Assignments {
			for _, pa := range parts {
				gen.Start(func(gctx context.Context) { s.runPartition(gctx, gen, topic, pa) })
			}
		}
	}
}

// watchTopics checks the topics' partition counts at the start of a
// generation and every partition_watch_interval. It returns, ending the
// generation so that the group rebalances, when a count changes or a
// missing topic appears; a missing topic is reported by Ready meanwhile.
func (s *Source) watchTopics(ctx context.Context) {
	var known map[string]int
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(s.cfg.PartitionWatchInterval)
		counts, err := s.partitionCounts(ctx)
		if err != nil {
			// An outage shows in the heartbeat and the reads; this is only
			// the watch.
			s.log.Debug("kafka topic metadata", "error", err)
			continue
		}
		var problems []error
		now := map[string]int{}
		for _, topic := range s.cfg.Topics {
			switch c := counts[topic].(type) {
			case int:
				now[topic] = c
			case error:
				var kerr kgo.Error
				if errors.As(c, &kerr) && kerr.Temporary() && !errors.Is(c, kgo.UnknownTopicOrPartition) {
					// A leader election: the count is as it was.
					if n, ok := known[topic]; ok {
						now[topic] = n
					}
					continue
				}
				problems = append(problems, fmt.Errorf("kafka topic %s: %w%s", topic, c, kafkaconn.Hint(c)))
			}
		}
		perr := errors.Join(problems...)
		s.mu.Lock()
		s.topicErr = perr
		s.mu.Unlock()
		if perr != nil {
			s.groupWarn.log(s.log, "kafka topic not readable; waiting for it", "error", perr.Error())
		}
		if known == nil {
			known = now
			continue
		}
		if !maps.Equal(known, now) {
			s.log.Info("kafka topic partitions changed; rebalancing", "before", known, "now", now)
			return
		}
	}
}

// partitionCounts maps each configured topic to its partition count (int)
// or its error.
func (s *Source) partitionCounts(ctx context.Context) (map[string]any, error) {
	mctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	md, err := s.meta.Metadata(mctx, &kgo.MetadataRequest{Topics: s.cfg.Topics})
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, t := range md.Topics {
		switch {
		case t.Error != nil:
			out[t.Name] = t.Error
		case len(t.Partitions) == 0:
			out[t.Name] = kgo.UnknownTopicOrPartition
		default:
			out[t.Name] = len(t.Partitions)
		}
	}
	for _, topic := range s.cfg.Topics {
		if _, ok := out[topic]; !ok {
			out[topic] = kgo.UnknownTopicOrPartition
		}
	}
	return out, nil
}

func describeAssignments(as map[string][]kgo.PartitionAssignment) string {
	var parts []string
	for topic, ps := range as {
		ids := make([]int, 0, len(ps))
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		sort.Ints(ids)
		strs := make([]string, len(ids))
		for i, id := range ids {
			strs[i] = strconv.Itoa(id)
		}
		parts = append(parts, topic+"["+strings.Join(strs, ",")+"]")
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// session is one ownership of a partition: one generation's worker.
type session struct {
	gen     *kgo.Generation
	genDone <-chan struct{}
	// ended is set once the worker gave the partition up; acks then no
	// longer commit (the next owner resumes from the last commit).
	ended atomic.Bool

	mu sync.Mutex
	// rewind is the offset to read from again after a batch was not
	// delivered, or -1.
	rewind int64
}

func (ss *session) setRewind(off int64) {
	ss.mu.Lock()
	if ss.rewind < 0 || off < ss.rewind {
		ss.rewind = off
	}
	ss.mu.Unlock()
}

func (ss *session) takeRewind() int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	off := ss.rewind
	ss.rewind = -1
	return off
}

func (ss *session) generationEnded() bool {
	select {
	case <-ss.genDone:
		return true
	default:
		return false
	}
}

// runPartition reads one assigned partition until the generation ends,
// handing out one batch at a time. It must not return before the
// generation ends: the library ends a generation when any worker returns.
func (s *Source) runPartition(ctx context.Context, gen *kgo.Generation, topic string, pa kgo.PartitionAssignment) {
	p := s.partition(topic, pa.ID)
	sess := &session{gen: gen, genDone: ctx.Done(), rewind: -1}
	p.begin(sess, pa.Offset)
	s.log.Debug("kafka partition assigned", "topic", topic, "partition", pa.ID, "generation", gen.ID, "offset", offsetString(pa.Offset))

	// Fetching stops when the generation ends or when Close begins.
	rctx, rcancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(s.stopCtx, rcancel)
	r := s.newReader(topic, pa.ID)
	// Before the reader's first fetch this only records where to start.
	_ = r.SetOffset(pa.Offset)

	s.readLoop(rctx, p, sess, r)

	stopAfter()
	rcancel()
	if err := r.Close(); err != nil {
		s.log.Debug("kafka reader close", "topic", topic, "partition", pa.ID, "error", err)
	}
	if s.stopCtx.Err() != nil {
		// Closing: keep the generation (and so the right to commit) until
		// Close has waited for the acknowledgements.
		<-ctx.Done()
	}
	s.drain(p)
	sess.ended.Store(true)
	p.end(sess)
	s.log.Debug("kafka partition released", "topic", topic, "partition", pa.ID, "generation", gen.ID)
}

// readLoop hands out batches until ctx ends.
func (s *Source) readLoop(ctx context.Context, p *partition, sess *session, r *kgo.Reader) {
	backoff := 100 * time.Millisecond
	for {
		// The previous batch of this partition, perhaps from an earlier
		// generation, must be acknowledged before the next one is read.
		select {
		case p.slot <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			<-p.slot
			return
		}
		if off := sess.takeRewind(); off >= 0 {
			if err := r.SetOffset(off); err != nil {
				<-p.slot
				return
			}
			p.onRewind()
		}
		msgs, err := s.fetch(ctx, r)
		if len(msgs) == 0 {
			<-p.slot
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				p.onFetchError(err)
				s.readWarn.log(s.log, "kafka partition read failed; retrying",
					"topic", p.topic, "partition", p.id, "error", err.Error()+kafkaconn.Hint(err))
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		if ctx.Err() != nil {
			// Revoked while the batch filled: the next owner reads it.
			<-p.slot
			return
		}
		// The slot now belongs to the batch: its Ack releases it.
		s.handMu.Lock()
		if s.closing {
			s.handMu.Unlock()
			<-p.slot
			return
		}
		s.inflight.Add(1)
		s.handMu.Unlock()
		b := s.newBatch(p, sess, msgs)
		select {
		case s.batches <- b.Batch:
		case <-ctx.Done():
			b.discard()
			return
		}
	}
}

// drain gives a revoked partition's batch in flight up to revoke_grace to
// be acknowledged, so that its commit still counts under the generation
// that read it and the next owner does not read it again.
func (s *Source) drain(p *partition) {
	if s.cfg.RevokeGrace <= 0 {
		return
	}
	t := time.NewTimer(s.cfg.RevokeGrace)
	defer t.Stop()
	select {
	case p.slot <- struct{}{}:
		<-p.slot
	case <-t.C:
		s.log.Debug("kafka partition revoked with a batch still unacknowledged; the next owner reads it again",
			"topic", p.topic, "partition", p.id)
	case <-s.abandon:
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
			s.readWarn.log(s.log, "kafka partition reader: "+fmt.Sprintf(format, a...))
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

// pendingBatch is a batch with a way to drop it when it could not be handed out.
type pendingBatch struct {
	stream.Batch
	discard func()
}

func (s *Source) newBatch(p *partition, sess *session, msgs []kgo.Message) pendingBatch {
	bodies := make([]stream.Body, len(msgs))
	partStr := strconv.Itoa(p.id)
	for i, m := range msgs {
		bodies[i] = stream.Body{Data: m.Value, Pos: stream.Position{
			Kind: Kind, Topic: p.topic, Partition: partStr, Offset: strconv.FormatInt(m.Offset, 10),
		}}
	}
	first, last := msgs[0].Offset, msgs[len(msgs)-1]
	p.onReceived(len(msgs), last.Offset, last.HighWaterMark)
	var once atomic.Bool
	// release frees the partition for its next batch only after this
	// batch's commit was attempted, so that commits never go back.
	release := func() {
		<-p.slot
		s.inflight.Done()
	}
	discard := func() {
		if once.CompareAndSwap(false, true) {
			release()
		}
	}
	ack := func(ctx context.Context, err error) error {
		if !once.CompareAndSwap(false, true) {
			return errors.New("kafka source: batch acknowledged twice")
		}
		defer release()
		if err != nil {
			// Not delivered: read the same messages again.
			sess.setRewind(first)
			return nil
		}
		p.onProcessed(last.Offset)
		if sess.ended.Load() {
			// The partition was given up: the next owner resumes from the
			// last commit, and a commit from a finished generation would be
			// refused anyway.
			return nil
		}
		next := last.Offset + 1
		cerr := sess.gen.CommitOffsets(map[string]map[int]int64{p.topic: {p.id: next}})
		if cerr != nil {
			// A failed commit loses nothing: a later commit covers it, or the
			// next owner reads these messages again.
			p.onCommitError()
			if sess.generationEnded() || isRebalance(cerr) {
				s.log.Debug("kafka commit refused during a rebalance", "topic", p.topic, "partition", p.id, "offset", next, "error", cerr)
			} else {
				s.commitWarn.log(s.log, "kafka offset commit failed; a later commit covers it",
					"topic", p.topic, "partition", p.id, "offset", next, "error", cerr.Error()+kafkaconn.Hint(cerr))
			}
			return nil
		}
		p.onCommitted(next, time.Now())
		return nil
	}
	return pendingBatch{discard: discard, Batch: stream.Batch{Bodies: bodies, Ack: ack}}
}

func isRebalance(err error) bool {
	return errors.Is(err, kgo.RebalanceInProgress) || errors.Is(err, kgo.IllegalGeneration) ||
		errors.Is(err, kgo.UnknownMemberId) || errors.Is(err, kgo.NotCoordinatorForGroup) ||
		errors.Is(err, kgo.FencedInstanceID)
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

// logLimiter logs a persisting failure at warning level once per interval
// and at debug level in between.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
}

func (l *logLimiter) log(logger *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	warn := l.last.IsZero() || now.Sub(l.last) >= l.every
	if warn {
		l.last = now
	}
	l.mu.Unlock()
	level := slog.LevelDebug
	if warn {
		level = slog.LevelWarn
		args = append(args, "next_warning_within", l.every.String())
	}
	logger.Log(context.Background(), level, msg, args...)
}

// reset lets the next failure warn at once (after a recovery).
func (l *logLimiter) reset() {
	l.mu.Lock()
	l.last = time.Time{}
	l.mu.Unlock()
}
