// Package kafka is the Kafka source (any Kafka cluster, or the Kafka
// endpoint of Azure Event Hubs): a consumer group member that reads each
// assigned partition on its own, hands out one partition's messages at a
// time as a batch, and commits a batch's offsets only once it is
// acknowledged.
package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Kind is the Position.Kind of Kafka bodies.
const Kind = "kafka"

// Source reads the configured topics as a member of a consumer group.
type Source struct {
	cfg      Config
	log      *slog.Logger
	dialer   *kgo.Dialer
	groupCfg kgo.ConsumerGroupConfig // the group is made (and joined) by Start
	meta     *kgo.Client             // topic metadata for the partition watch

	// parts hands out the partitions' batches.
	parts *partitioned.Source[topicPartition, kgo.Message]

	// A persisting failure is warned about once per error_log_interval.
	groupWarn, readWarn, commitWarn *retry.Limiter

	mu         sync.Mutex
	topicErr   error // a configured topic is missing or not readable
	generation int32
}

// New builds the clients and checks the consumer group's settings; Start
// joins the group.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("kafka source config: %w", errors.Join(errs...))
	}
	logger = cmp.Or(logger, slog.Default())
	dialer, err := kafkaconn.Dialer(cfg.ClientID, cfg.DialTimeout, cfg.SASL, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	s := &Source{
		cfg:        cfg,
		log:        logger,
		dialer:     dialer,
		parts:      partitioned.New[topicPartition, kgo.Message](partitioned.Options{Name: "kafka source"}),
		groupWarn:  retry.NewLimiter(cfg.ErrorLogInterval),
		readWarn:   retry.NewLimiter(cfg.ErrorLogInterval),
		commitWarn: retry.NewLimiter(cfg.ErrorLogInterval),
	}
	s.parts.SetReady(errStarting)
	transport, err := kafkaconn.Transport(cfg.ClientID, cfg.DialTimeout, cfg.SASL, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	s.meta = &kgo.Client{Addr: kgo.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: transport}

	start := kgo.FirstOffset
	if cfg.StartOffset == StartLatest {
		start = kgo.LastOffset
	}
	s.groupCfg = kgo.ConsumerGroupConfig{
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
	}
	if err := s.groupCfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka source: consumer group: %w", err)
	}
	return s, nil
}

// Start joins the group and reads its partitions under ctx, in the
// background, until ctx ends or Close; it does not wait for the brokers to
// be reachable (see Ready).
func (s *Source) Start(ctx context.Context) error {
	return s.parts.Start(ctx, s.run, func(ctx context.Context) {
		s.parts.Watch(ctx, s.cfg.StatsInterval, s.refreshWatermarks)
	})
}

var (
	_ stream.Source    = (*Source)(nil)
	_ stream.Readiness = (*Source)(nil)
)

// errStarting is the readiness before the group was first joined.
var errStarting = errors.New("kafka: starting, not yet a member of the consumer group")

// Read returns the next batch of one partition. It returns io.EOF once
// Close has begun.
func (s *Source) Read(ctx context.Context) (stream.Batch, error) { return s.parts.Read(ctx) }

// Ready reports whether the instance is a member of the group and every
// partition it owns can be read.
func (s *Source) Ready() error {
	if err := s.parts.Ready(); err != nil {
		return err
	}
	s.mu.Lock()
	err := s.topicErr
	s.mu.Unlock()
	if err != nil {
		return err
	}
	now := time.Now()
	for _, p := range s.parts.Partitions() {
		if _, ferr := p.Failure(now, 0); ferr != nil && p.Owned() {
			tp := p.Key()
			return fmt.Errorf("kafka topic %s partition %d: %w%s", tp.topic, tp.id, ferr, kafkaconn.Hint(ferr))
		}
	}
	return nil
}

// Close stops handing out batches, waits (within ctx) for the batches
// already handed out to be acknowledged and committed, then leaves the
// group and closes every connection.
func (s *Source) Close(ctx context.Context) error {
	return s.parts.Close(ctx, func(context.Context) error {
		if t, ok := s.meta.Transport.(*kgo.Transport); ok {
			t.CloseIdleConnections()
		}
		return nil
	})
}

// run joins the group, then generation after generation, and starts a
// worker for every assigned partition. Next returns a generation only
// after the previous one ended and all its workers returned. When ctx ends
// it leaves the group, which ends the generation (its workers return), so
// that the partitions move to other members at once.
func (s *Source) run(ctx context.Context) {
	group, err := kgo.NewConsumerGroup(s.groupCfg)
	if err != nil {
		// New checked the settings; nothing else makes this fail.
		s.parts.SetReady(fmt.Errorf("kafka source: consumer group: %w", err))
		return
	}
	defer group.Close()
	var failingSince time.Time // start of the current run of join failures
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kgo.ErrGroupClosed) {
				return
			}
			if errors.Is(err, kgo.RebalanceInProgress) {
				// The normal way a rebalance shows itself; the member rejoins.
				s.log.Debug("kafka group rebalancing", "group", s.cfg.GroupID)
				continue
			}
			s.parts.SetReady(fmt.Errorf("kafka group %s: %w%s", s.cfg.GroupID, err, kafkaconn.Hint(err)))
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
			s.warn(s.groupWarn, "kafka consumer group cannot be joined; retrying", args...)
			continue
		}
		s.parts.SetReady(nil)
		s.mu.Lock()
		s.generation = gen.ID
		s.mu.Unlock()
		if !failingSince.IsZero() {
			s.groupWarn.Reset()
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
			s.warn(s.groupWarn, "kafka topic not readable; waiting for it", "error", perr.Error())
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

// warn logs a persisting failure at warning level once per
// error_log_interval (l lets it through), and at debug level in between.
func (s *Source) warn(l *retry.Limiter, msg string, args ...any) {
	level := slog.LevelDebug
	if ok, _ := l.Allow(time.Now()); ok {
		level = slog.LevelWarn
		args = append(args, "next_warning_within", l.Interval.String())
	}
	s.log.Log(context.Background(), level, msg, args...)
}
