package kafka

import (
	"context"
	"errors"
	"fmt"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
)

// ErrTopicMissing is wrapped by Check when a configured topic does not exist.
var ErrTopicMissing = errors.New("topic does not exist")

// Check verifies, without joining the group, that the brokers are reachable
// with the configured credentials, every topic exists with a leader for each
// partition, and the group's coordinator can be found. Its error says what
// to do. The consumer group needs no setup: it is created on first join.
func Check(ctx context.Context, cfg Config) error {
	if errs := cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("kafka source config: %w", errors.Join(errs...))
	}
	t, err := kafkaconn.Transport(cfg.ClientID, cfg.DialTimeout, cfg.SASL, cfg.TLS)
	if err != nil {
		return fmt.Errorf("kafka source: %w", err)
	}
	defer t.CloseIdleConnections()
	c := &kgo.Client{Addr: kgo.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: t}
	md, err := c.Metadata(ctx, &kgo.MetadataRequest{Topics: cfg.Topics})
	if err != nil {
		return fmt.Errorf("kafka metadata from %v: %w%s", cfg.Brokers, err, kafkaconn.Hint(err))
	}
	found := map[string]bool{}
	for _, tp := range md.Topics {
		found[tp.Name] = true
		switch {
		case errors.Is(tp.Error, kgo.UnknownTopicOrPartition):
			return fmt.Errorf("kafka topic %q: %w (or the principal may not DESCRIBE it)", tp.Name, ErrTopicMissing)
		case tp.Error != nil:
			return fmt.Errorf("kafka topic %q: %w%s", tp.Name, tp.Error, kafkaconn.Hint(tp.Error))
		case len(tp.Partitions) == 0:
			return fmt.Errorf("kafka topic %q: no partitions yet", tp.Name)
		}
		for _, p := range tp.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return fmt.Errorf("kafka topic %q partition %d: no leader", tp.Name, p.ID)
			}
		}
	}
	for _, topic := range cfg.Topics {
		if !found[topic] {
			return fmt.Errorf("kafka topic %q: %w", topic, ErrTopicMissing)
		}
	}
	res, err := c.FindCoordinator(ctx, &kgo.FindCoordinatorRequest{Key: cfg.GroupID, KeyType: kgo.CoordinatorKeyTypeConsumer})
	if err == nil && res.Error != nil {
		err = res.Error
	}
	if err != nil {
		return fmt.Errorf("kafka group %q coordinator: %w%s", cfg.GroupID, err, kafkaconn.Hint(err))
	}
	return nil
}
