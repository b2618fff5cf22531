package kafka

import (
	"fmt"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
)

// Start offsets used when the group has no committed offset for a partition.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// Config is the [input.kafka] section. Every key and its default is listed
// in docs/kafka-source.md.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. For the Event Hubs
	// Kafka endpoint: <namespace>.servicebus.windows.net:9093.
	Brokers []string `toml:"brokers"`
	// Topics are read by the group; for Event Hubs, the event hub names.
	Topics []string `toml:"topics"`
	// GroupID is the consumer group whose committed offsets say where to
	// resume; instances sharing it share the partitions.
	GroupID string `toml:"group_id"`
	// ClientID identifies the exporter in broker logs and quotas.
	ClientID string `toml:"client_id"`
	// StartOffset applies to partitions without a committed offset:
	// earliest or latest.
	StartOffset string `toml:"start_offset"`

	// SessionTimeout is how long the coordinator waits for a heartbeat
	// before it gives this instance's partitions to others.
	SessionTimeout time.Duration `toml:"session_timeout"`
	// HeartbeatInterval is how often the instance tells the coordinator it
	// is alive; at most a third of SessionTimeout.
	HeartbeatInterval time.Duration `toml:"heartbeat_interval"`
	// RebalanceTimeout is how long the coordinator waits for every member
	// to rejoin during a rebalance.
	RebalanceTimeout time.Duration `toml:"rebalance_timeout"`
	// RevokeGrace is how long a revoked partition waits for its batch in
	// flight to be acknowledged and committed before the instance rejoins;
	// shorter than RebalanceTimeout.
	RevokeGrace time.Duration `toml:"revoke_grace"`
	// RejoinBackoff is the pause before joining the group again after a
	// failure (broker unreachable, authentication refused).
	RejoinBackoff time.Duration `toml:"rejoin_backoff"`
	// DialTimeout bounds connecting (TCP, TLS and SASL) to a broker.
	DialTimeout time.Duration `toml:"dial_timeout"`
	// ErrorLogInterval is how often a persisting failure is logged again at
	// warning level.
	ErrorLogInterval time.Duration `toml:"error_log_interval"`
	// PartitionWatchInterval is how often the topics' partition counts are
	// checked; a change (or a missing topic appearing) rebalances the group.
	PartitionWatchInterval time.Duration `toml:"partition_watch_interval"`
	// StatsInterval is how often the messages/s rates are computed and the
	// owned partitions' high watermarks are read.
	StatsInterval time.Duration `toml:"stats_interval"`

	Batch BatchConfig          `toml:"batch"`
	SASL  kafkaconn.SASLConfig `toml:"sasl"`
	TLS   kafkaconn.TLSConfig  `toml:"tls"`
}

// BatchConfig shapes the batches handed to the pipeline.
type BatchConfig struct {
	// MaxMessages is the most messages of one partition in a batch; it is
	// also the per-partition prefetch queue.
	MaxMessages int `toml:"max_messages"`
	// MaxWait is how long a partition waits, after its first message, to
	// fill a batch before handing out what it has.
	MaxWait time.Duration `toml:"max_wait"`
	// FetchMaxBytes caps one fetch response per partition; it must exceed
	// the largest message.
	FetchMaxBytes int `toml:"fetch_max_bytes"`
}

// DefaultConfig returns the defaults documented in docs/kafka-source.md.
func DefaultConfig() Config {
	return Config{
		GroupID:           "sspr-exporter",
		ClientID:          "sspr-exporter",
		StartOffset:       StartEarliest,
		SessionTimeout:    30 * time.Second,
		HeartbeatInterval: 3 * time.Second,
		RebalanceTimeout:  60 * time.Second,
		RevokeGrace:       10 * time.Second,
		RejoinBackoff:     2 * time.Second,
		DialTimeout:       10 * time.Second,
		ErrorLogInterval:  30 * time.Second,
		StatsInterval:     10 * time.Second,

		PartitionWatchInterval: 30 * time.Second,
		Batch: BatchConfig{
			MaxMessages:   500,
			MaxWait:       500 * time.Millisecond,
			FetchMaxBytes: 10 << 20,
		},
	}
}

// Validate returns every problem with c, each starting with its key path.
func (c Config) Validate() []error {
	errs := kafkaconn.ValidateBrokers("brokers", c.Brokers)
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if len(c.Topics) == 0 {
		add("topics: at least one topic is required")
	}
	seen := map[string]bool{}
	for i, t := range c.Topics {
		if !kafkaconn.ValidateTopic(t) {
			add("topics[%d]: %q is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)", i, t)
		}
		if seen[t] {
			add("topics[%d]: %q is listed twice", i, t)
		}
		seen[t] = true
	}
	if c.GroupID == "" {
		add("group_id: required")
	}
	if c.StartOffset != StartEarliest && c.StartOffset != StartLatest {
		add("start_offset: %q must be %s or %s", c.StartOffset, StartEarliest, StartLatest)
	}
	// The broker's default group.min/max.session.timeout.ms are 6s and 30m
	// (Event Hubs: 6s to 300s); outside them it refuses the join.
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute {
		add("session_timeout: must be between 6s and 30m")
	}
	if c.HeartbeatInterval <= 0 {
		add("heartbeat_interval: must be positive")
	} else if c.HeartbeatInterval*3 > c.SessionTimeout {
		add("heartbeat_interval: must be at most a third of session_timeout")
	}
	if c.RebalanceTimeout < time.Second {
		add("rebalance_timeout: must be at least 1s")
	}
	if c.RevokeGrace < 0 {
		add("revoke_grace: must not be negative")
	} else if c.RevokeGrace >= c.RebalanceTimeout {
		add("revoke_grace: must be shorter than rebalance_timeout")
	}
	if c.RejoinBackoff <= 0 {
		add("rejoin_backoff: must be positive")
	}
	if c.DialTimeout <= 0 {
		add("dial_timeout: must be positive")
	}
	if c.ErrorLogInterval <= 0 {
		add("error_log_interval: must be positive")
	}
	if c.PartitionWatchInterval < time.Second {
		add("partition_watch_interval: must be at least 1s")
	}
	if c.StatsInterval <= 0 {
		add("stats_interval: must be positive")
	}
	if c.Batch.MaxMessages < 1 || c.Batch.MaxMessages > 100_000 {
		add("batch.max_messages: must be between 1 and 100000")
	}
	if c.Batch.MaxWait <= 0 {
		add("batch.max_wait: must be positive")
	}
	if c.Batch.FetchMaxBytes < 1024 {
		add("batch.fetch_max_bytes: must be at least 1024")
	}
	errs = append(errs, kafkaconn.Validate(c.SASL, c.TLS)...)
	return errs
}
