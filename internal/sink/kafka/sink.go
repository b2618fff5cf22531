// Package kafka is the Kafka sink: one message per ECS document, keyed so
// that every Java-compatible client agrees on the partition, acknowledged by
// the brokers before Write returns. docs/kafka.md is the consumer contract.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Name is the sink name used in rejections and logs.
const Name = "kafka"

// ErrTooLarge is wrapped in the rejection of a document whose message
// exceeds max_message_bytes or the broker's limit.
var ErrTooLarge = errors.New("message too large")

// errNotConnected is the readiness state before the first successful
// contact with the brokers.
var errNotConnected = errors.New("kafka: not connected yet")

// Sink writes ECS documents to a Kafka topic. It is safe for concurrent use.
type Sink struct {
	cfg    Config
	logger *slog.Logger
	enc    encoder
	w      *kgo.Writer
	// single sends one message per request, to tell a message the broker
	// finds too large from its batch neighbours (the broker refuses whole
	// batches).
	single    *kgo.Writer
	transport *kgo.Transport

	// logs lets a persisting failure of one class be logged once per
	// error_log_interval.
	logs *retry.Limiter

	mu        sync.Mutex
	readyErr  error
	failing   bool // a failure was logged and recovery not yet
	lastClass string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ stream.Sink = (*Sink)(nil)
var _ stream.Readiness = (*Sink)(nil)

// New builds the sink. It does not block on the brokers: a background
// probe marks the sink ready once the topic's metadata can be read.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("kafka config: %w", errors.Join(errs...))
	}
	if logger == nil {
		logger = slog.Default()
	}
	transport, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	s := &Sink{cfg: cfg, logger: logger.With("sink", Name, "topic", cfg.Topic), readyErr: errNotConnected, transport: transport,
		logs: retry.NewLimiter(cfg.ErrorLogInterval)}
	s.enc.keyMode = cfg.Key
	if cfg.Pseudonymize.Enabled {
		s.enc.pseudo = newPseudonymizer([]byte(cfg.Pseudonymize.Key.Reveal()))
	}
	// Murmur2Balancer puts keyed messages where the Java client's default
	// partitioner does, toPositive(murmur2(key)) % n, so every client
	// agrees; null keys are spread at random.
	newWriter := func(batchSize int) *kgo.Writer {
		return &kgo.Writer{
			Addr:     kgo.TCP(cfg.Brokers...),
			Topic:    cfg.Topic,
			Balancer: kgo.Murmur2Balancer{},
			// Retries belong to Write, which knows which documents are
			// still pending and never gives up while its context lives.
			MaxAttempts:  1,
			BatchSize:    batchSize,
			BatchBytes:   int64(max(cfg.Batch.MaxBytes, cfg.MaxMessageBytes+4096)),
			BatchTimeout: max(cfg.Batch.Linger, time.Microsecond),
			ReadTimeout:  cfg.WriteTimeout,
			WriteTimeout: cfg.WriteTimeout,
			RequiredAcks: requiredAcks[cfg.RequiredAcks],
			Compression:  compressions[cfg.Compression],
			Transport:    transport,
		}
	}
	s.w = newWriter(cfg.Batch.MaxMessages)
	s.single = newWriter(1)

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go s.probe(ctx)
	return s, nil
}

// probe reads the topic metadata until it succeeds once; from then on the
// outcome of writes keeps the readiness state.
func (s *Sink) probe(ctx context.Context) {
	defer s.wg.Done()
	b := s.cfg.Retry.Backoff()
	for {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		err := Check(pctx, s.cfg)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			s.mu.Lock()
			if errors.Is(s.readyErr, errNotConnected) {
				s.readyErr = nil
			}
			s.mu.Unlock()
			return
		}
		s.noteFailure(err, 0)
		if !retry.Wait(ctx, b.Next()) {
			return
		}
	}
}

// Ready returns nil when the last contact with the brokers succeeded, or the
// error that keeps the sink from writing.
func (s *Sink) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyErr
}

// Write sends one message per document and returns nil once the brokers
// acknowledged all of them (per required_acks). Documents that can never be
// stored (too large) are returned in a *stream.Rejected; every other
// failure is retried with backoff until ctx ends, and then ctx's error is
// returned with nothing assumed stored.
func (s *Sink) Write(ctx context.Context, docs []ecs.Event) error {
	msgs, encErrs := s.enc.encodeAll(docs)
	pending := make([]int, 0, len(docs))
	var rejected []stream.Rejection
	for i := range docs {
		if encErrs[i] != nil {
			rejected = append(rejected, stream.Rejection{Index: i, Err: encErrs[i]})
			continue
		}
		m := &msgs[i]
		if n := messageSize(m); n > s.cfg.MaxMessageBytes {
			rejected = append(rejected, stream.Rejection{Index: i,
				Err: fmt.Errorf("event %s: %w: about %d bytes, max_message_bytes is %d", docs[i].Event.ID, ErrTooLarge, n, s.cfg.MaxMessageBytes)})
			continue
		}
		pending = append(pending, i)
	}

	b := s.cfg.Retry.Backoff()
	for attempt := 1; len(pending) > 0; attempt++ {
		batch := make([]kgo.Message, len(pending))
		for j, i := range pending {
			batch[j] = msgs[i]
		}
		err := s.w.WriteMessages(ctx, batch...)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kafka produce: %w", ctx.Err())
		}
		var next, tooLarge []int
		var werrs kgo.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(pending) {
			err = nil
			for j, e := range werrs {
				switch {
				case e == nil:
				case errors.Is(e, kgo.MessageSizeTooLarge):
					tooLarge = append(tooLarge, pending[j])
				default:
					next = append(next, pending[j])
					if err == nil {
						err = e
					}
				}
			}
		} else {
			next = pending
		}
		for _, i := range tooLarge {
			switch e := unwrapSingle(s.single.WriteMessages(ctx, msgs[i])); {
			case e == nil:
			case errors.Is(e, kgo.MessageSizeTooLarge):
				rejected = append(rejected, stream.Rejection{Index: i,
					Err: fmt.Errorf("event %s: %w: the broker refused it (%v)", docs[i].Event.ID, ErrTooLarge, e)})
			case ctx.Err() != nil:
				return fmt.Errorf("kafka produce: %w", ctx.Err())
			default:
				next = append(next, i)
				if err == nil {
					err = e
				}
			}
		}
		pending = next
		if len(pending) == 0 {
			break
		}
		s.noteFailure(err, len(pending))
		if !retry.Wait(ctx, b.Next()) {
			return fmt.Errorf("kafka produce: %w (last error: %v)", ctx.Err(), err)
		}
	}
	if len(rejected) < len(docs) {
		s.noteSuccess()
	}
	if len(rejected) > 0 {
		sortRejections(rejected)
		return &stream.Rejected{Sink: Name, Docs: rejected}
	}
	return nil
}

// unwrapSingle returns the error of the only message of a one-message
// write, which kafka-go wraps in WriteErrors.
func unwrapSingle(err error) error {
	var werrs kgo.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == 1 {
		return werrs[0]
	}
	return err
}

func sortRejections(r []stream.Rejection) {
	// Insertion sort: rejections are few and mostly in order already.
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].Index < r[j-1].Index; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// errorClass groups failures for logging: a change of class is logged at
// once, a repeat only every error_log_interval.
func errorClass(err error) (class string, streamWide bool) {
	switch {
	case errors.Is(err, kgo.SASLAuthenticationFailed), errors.Is(err, kgo.UnsupportedSASLMechanism), errors.Is(err, kgo.IllegalSASLState):
		return "authentication", true
	case errors.Is(err, kgo.TopicAuthorizationFailed), errors.Is(err, kgo.ClusterAuthorizationFailed):
		return "authorization", true
	case errors.Is(err, kgo.UnknownTopicOrPartition), errors.Is(err, ErrTopicMissing):
		return "unknown topic", true
	}
	return "unavailable", false
}

func (s *Sink) noteFailure(err error, pending int) {
	if err == nil {
		return
	}
	class, streamWide := errorClass(err)
	s.mu.Lock()
	s.readyErr = fmt.Errorf("kafka: %s: %w%s", class, err, hint(err))
	if !s.failing || class != s.lastClass {
		// A new failure, or another kind of it, is logged at once.
		s.logs.Reset()
	}
	s.failing, s.lastClass = true, class
	logIt, held := s.logs.Allow(time.Now())
	s.mu.Unlock()
	if !logIt {
		return
	}
	level := slog.LevelWarn
	if streamWide {
		// Retrying cannot fix these; someone has to act.
		level = slog.LevelError
	}
	s.logger.Log(context.Background(), level, "kafka unavailable, retrying",
		"class", class, "error", err.Error()+hint(err), "pending", pending,
		"repeats_since_last_log", held, "next_log_within", s.cfg.ErrorLogInterval.String())
}

func (s *Sink) noteSuccess() {
	s.mu.Lock()
	recovered := s.failing
	s.failing = false
	s.readyErr = nil
	s.mu.Unlock()
	if recovered {
		s.logger.Info("kafka writes resumed")
	}
}

// Close flushes and closes the writers and stops the readiness probe.
func (s *Sink) Close(ctx context.Context) error {
	s.cancel()
	done := make(chan error, 1)
	go func() {
		err := errors.Join(s.w.Close(), s.single.Close())
		s.transport.CloseIdleConnections()
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("kafka close: %w", err)
	}
	return nil
}
