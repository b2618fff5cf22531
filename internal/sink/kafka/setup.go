package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
)

var requiredAcks = map[string]kgo.RequiredAcks{
	"all":  kgo.RequireAll,
	"one":  kgo.RequireOne,
	"none": kgo.RequireNone,
}

var compressions = map[string]kgo.Compression{
	"none":   0,
	"gzip":   kgo.Gzip,
	"snappy": kgo.Snappy,
	"lz4":    kgo.Lz4,
	"zstd":   kgo.Zstd,
}

// newTransport builds the connection settings shared by the writer and the
// admin client.
func newTransport(cfg Config) (*kgo.Transport, error) {
	t, err := kafkaconn.Transport(cfg.ClientID, cfg.DialTimeout, cfg.SASL, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("kafka connection settings: %w", err)
	}
	return t, nil
}

// adminClient returns a client on its own transport; the caller closes the
// transport's connections with the returned func.
func adminClient(cfg Config) (*kgo.Client, func(), error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, nil, fmt.Errorf("kafka config: %w", errors.Join(errs...))
	}
	t, err := newTransport(cfg)
	if err != nil {
		return nil, nil, err
	}
	return &kgo.Client{Addr: kgo.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: t}, t.CloseIdleConnections, nil
}

// Setup creates the topic when cfg.Setup.CreateTopic allows it (an existing
// topic is left as it is), then checks it as Check does.
func Setup(ctx context.Context, cfg Config, logger *slog.Logger) error {
	// Checking first gives clear errors for credentials and reachability
	// (kafka-go's CreateTopics reports those as "broker not available") and
	// spares the CREATE permission when the topic exists.
	err := Check(ctx, cfg)
	if err == nil {
		logger.Info("kafka topic exists, left unchanged", "topic", cfg.Topic)
		return nil
	}
	if !cfg.Setup.CreateTopic || !errors.Is(err, ErrTopicMissing) {
		return err
	}
	c, closeConns, err := adminClient(cfg)
	if err != nil {
		return err
	}
	defer closeConns()
	var entries []kgo.ConfigEntry
	if cfg.Setup.Retention != 0 {
		ms := int64(-1)
		if cfg.Setup.Retention > 0 {
			ms = cfg.Setup.Retention.Milliseconds()
		}
		entries = append(entries, kgo.ConfigEntry{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(ms, 10)})
	}
	if cfg.Setup.CleanupPolicy != "" {
		entries = append(entries, kgo.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: cfg.Setup.CleanupPolicy})
	}
	if cfg.Setup.MaxMessageBytes > 0 {
		entries = append(entries, kgo.ConfigEntry{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(cfg.Setup.MaxMessageBytes)})
	}
	res, err := c.CreateTopics(ctx, &kgo.CreateTopicsRequest{Topics: []kgo.TopicConfig{{
		Topic:             cfg.Topic,
		NumPartitions:     cfg.Setup.Partitions,
		ReplicationFactor: cfg.Setup.ReplicationFactor,
		ConfigEntries:     entries,
	}}})
	if err != nil {
		return fmt.Errorf("kafka create topic %q: %w", cfg.Topic, err)
	}
	switch terr := res.Errors[cfg.Topic]; {
	case terr == nil:
		logger.Info("kafka topic created", "topic", cfg.Topic, "partitions", cfg.Setup.Partitions,
			"replication_factor", cfg.Setup.ReplicationFactor)
	case errors.Is(terr, kgo.TopicAlreadyExists):
		logger.Info("kafka topic exists, left unchanged", "topic", cfg.Topic)
	case errors.Is(terr, kgo.TopicAuthorizationFailed), errors.Is(terr, kgo.ClusterAuthorizationFailed):
		return fmt.Errorf("kafka create topic %q: %w: grant the exporter's principal CREATE on the topic, or create it yourself and set setup.create_topic = false", cfg.Topic, terr)
	default:
		return fmt.Errorf("kafka create topic %q: %w", cfg.Topic, terr)
	}
	// A new topic's leaders take a moment to appear in metadata.
	for {
		err := Check(ctx, cfg)
		if err == nil || !errors.Is(err, errTopicNotReady) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var errTopicNotReady = errors.New("topic has partitions without a leader")

// ErrTopicMissing is wrapped by Check when the topic does not exist.
var ErrTopicMissing = errors.New("topic does not exist")

// Check verifies the brokers are reachable with the configured credentials
// and the topic exists with a leader for every partition. Its error says
// what to do.
func Check(ctx context.Context, cfg Config) error {
	c, closeConns, err := adminClient(cfg)
	if err != nil {
		return err
	}
	defer closeConns()
	md, err := c.Metadata(ctx, &kgo.MetadataRequest{Topics: []string{cfg.Topic}})
	if err != nil {
		return fmt.Errorf("kafka metadata from %v: %w%s", cfg.Brokers, err, hint(err))
	}
	for _, t := range md.Topics {
		if t.Name != cfg.Topic {
			continue
		}
		switch {
		case errors.Is(t.Error, kgo.UnknownTopicOrPartition):
			return fmt.Errorf("kafka topic %q: %w: run setup with setup.create_topic = true, or create it (for example kafka-topics.sh --create --topic %s --partitions 6)", cfg.Topic, ErrTopicMissing, cfg.Topic)
		case t.Error != nil:
			return fmt.Errorf("kafka topic %q: %w%s", cfg.Topic, t.Error, hint(t.Error))
		case len(t.Partitions) == 0:
			return fmt.Errorf("kafka topic %q: %w", cfg.Topic, errTopicNotReady)
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return fmt.Errorf("kafka topic %q partition %d: %w", cfg.Topic, p.ID, errTopicNotReady)
			}
		}
		return nil
	}
	return fmt.Errorf("kafka topic %q: %w: run setup with setup.create_topic = true, or create it", cfg.Topic, ErrTopicMissing)
}

// hint says what a user can do about errors that no retry will fix.
func hint(err error) string {
	switch {
	case errors.Is(err, kgo.SASLAuthenticationFailed):
		return " (check sasl.mechanism, sasl.username and sasl.password)"
	case errors.Is(err, kgo.TopicAuthorizationFailed):
		return " (grant the exporter's principal WRITE and DESCRIBE on the topic)"
	case errors.Is(err, kgo.ClusterAuthorizationFailed):
		return " (the exporter's principal lacks a cluster permission)"
	case errors.Is(err, kgo.UnknownTopicOrPartition):
		return " (create the topic or run setup; if it exists, grant the exporter's principal DESCRIBE and WRITE on it)"
	case errors.Is(err, kgo.UnsupportedSASLMechanism):
		return " (the broker does not offer sasl.mechanism)"
	}
	return ""
}
