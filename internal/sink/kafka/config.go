package kafka

import (
	"fmt"
	"slices"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Config configures the Kafka sink. Every key and its default is listed in
// docs/kafka.md.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `toml:"brokers"`
	// Topic receives one message per ECS document.
	Topic string `toml:"topic"`
	// ClientID identifies the exporter in broker logs and quotas.
	ClientID string `toml:"client_id"`
	// Key selects the message key: user, tenant or none.
	Key string `toml:"key"`
	// RequiredAcks is all, one or none.
	RequiredAcks string `toml:"required_acks"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string `toml:"compression"`
	// MaxMessageBytes is the largest message the sink sends; bigger
	// documents are rejected (dead-lettered) without a round trip.
	MaxMessageBytes int `toml:"max_message_bytes"`
	// DialTimeout bounds connecting (TCP, TLS and SASL) to a broker.
	DialTimeout time.Duration `toml:"dial_timeout"`
	// WriteTimeout bounds one produce or metadata request.
	WriteTimeout time.Duration `toml:"write_timeout"`
	// ErrorLogInterval is how often a persisting failure is logged again.
	ErrorLogInterval time.Duration `toml:"error_log_interval"`

	Batch        BatchConfig        `toml:"batch"`
	Retry        retry.Config       `toml:"retry"`
	SASL         SASLConfig         `toml:"sasl"`
	TLS          TLSConfig          `toml:"tls"`
	Setup        SetupConfig        `toml:"setup"`
	Pseudonymize PseudonymizeConfig `toml:"pseudonymize"`
}

// BatchConfig tunes how messages are grouped into produce requests.
type BatchConfig struct {
	// MaxMessages per partition batch.
	MaxMessages int `toml:"max_messages"`
	// MaxBytes per partition batch.
	MaxBytes int `toml:"max_bytes"`
	// Linger is how long a partially filled batch waits for more messages.
	Linger time.Duration `toml:"linger"`
}

// SASLConfig selects SASL authentication; the keys are shared with every
// Kafka component.
type SASLConfig = kafkaconn.SASLConfig

// TLSConfig configures TLS to the brokers; the keys are shared with every
// Kafka component.
type TLSConfig = kafkaconn.TLSConfig

// SetupConfig says how Setup creates the topic.
type SetupConfig struct {
	// CreateTopic allows Setup to create the topic when it is missing.
	CreateTopic bool `toml:"create_topic"`
	// Partitions of a created topic.
	Partitions int `toml:"partitions"`
	// ReplicationFactor of a created topic; -1 takes the broker default.
	ReplicationFactor int `toml:"replication_factor"`
	// Retention sets retention.ms; 0 keeps the broker default and a
	// negative value (e.g. "-1ms") keeps messages forever.
	Retention time.Duration `toml:"retention"`
	// CleanupPolicy sets cleanup.policy: delete, compact or "compact,delete".
	CleanupPolicy string `toml:"cleanup_policy"`
	// MaxMessageBytes sets the topic's max.message.bytes when positive.
	MaxMessageBytes int `toml:"max_message_bytes"`
}

// PseudonymizeConfig replaces personal fields in the Kafka copy with keyed
// hashes (HMAC-SHA-256, hex).
type PseudonymizeConfig struct {
	Enabled bool          `toml:"enabled"`
	Key     secret.String `toml:"key"`
}

// DefaultConfig returns the defaults documented in docs/kafka.md.
func DefaultConfig() Config {
	return Config{
		Topic:            "entra-sspr",
		ClientID:         "sspr-exporter",
		Key:              KeyUser,
		RequiredAcks:     "all",
		Compression:      "none",
		MaxMessageBytes:  1_000_000,
		DialTimeout:      10 * time.Second,
		WriteTimeout:     10 * time.Second,
		ErrorLogInterval: 30 * time.Second,
		Batch:            BatchConfig{MaxMessages: 1000, MaxBytes: 1 << 20, Linger: 5 * time.Millisecond},
		Retry:            retry.Config{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second},
		Setup: SetupConfig{
			CreateTopic:       true,
			Partitions:        6,
			ReplicationFactor: -1,
			Retention:         7 * 24 * time.Hour,
			CleanupPolicy:     "delete",
		},
	}
}

// Message key choices.
const (
	KeyUser   = "user"   // user.target.id, else user.id
	KeyTenant = "tenant" // cloud.account.id
	KeyNone   = "none"   // null key
)

// Validate returns every problem with c, each starting with its key path.
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	errs = append(errs, kafkaconn.ValidateBrokers("brokers", c.Brokers)...)
	if !kafkaconn.ValidateTopic(c.Topic) {
		add("topic: %q is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)", c.Topic)
	}
	if !slices.Contains([]string{KeyUser, KeyTenant, KeyNone}, c.Key) {
		add("key: %q must be user, tenant or none", c.Key)
	}
	if _, ok := requiredAcks[c.RequiredAcks]; !ok {
		add("required_acks: %q must be all, one or none", c.RequiredAcks)
	}
	if _, ok := compressions[c.Compression]; !ok {
		add("compression: %q must be none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	if c.MaxMessageBytes < 1024 {
		add("max_message_bytes: must be at least 1024")
	}
	if c.DialTimeout <= 0 {
		add("dial_timeout: must be positive")
	}
	if c.WriteTimeout <= 0 {
		add("write_timeout: must be positive")
	}
	if c.ErrorLogInterval <= 0 {
		add("error_log_interval: must be positive")
	}
	if c.Batch.MaxMessages < 1 {
		add("batch.max_messages: must be at least 1")
	}
	if c.Batch.MaxBytes < 1024 {
		add("batch.max_bytes: must be at least 1024")
	}
	if c.Batch.Linger < 0 {
		add("batch.linger: must not be negative")
	}
	for _, e := range c.Retry.Validate() {
		add("retry.%v", e)
	}
	errs = append(errs, kafkaconn.Validate(c.SASL, c.TLS)...)
	if c.Setup.Partitions < 1 && c.Setup.Partitions != -1 {
		add("setup.partitions: must be at least 1 (or -1 for the broker default)")
	}
	if c.Setup.ReplicationFactor < 1 && c.Setup.ReplicationFactor != -1 {
		add("setup.replication_factor: must be at least 1 (or -1 for the broker default)")
	}
	if !slices.Contains([]string{"", "delete", "compact", "compact,delete", "delete,compact"}, c.Setup.CleanupPolicy) {
		add("setup.cleanup_policy: %q must be delete, compact or \"compact,delete\"", c.Setup.CleanupPolicy)
	}
	if c.Setup.MaxMessageBytes < 0 {
		add("setup.max_message_bytes: must not be negative")
	}
	if c.Pseudonymize.Enabled && len(c.Pseudonymize.Key.Reveal()) < 16 {
		add("pseudonymize.key: must be at least 16 bytes when pseudonymize.enabled is true")
	}
	return errs
}
