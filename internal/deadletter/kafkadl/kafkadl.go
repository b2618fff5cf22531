// Package kafkadl writes dead letters to a Kafka topic, one message per
// record in the same JSON format as the dead-letter file, for teams that
// collect them centrally.
package kafkadl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
)

// backoff spaces the attempts to deliver one dead letter.
var backoff = retry.Config{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second}

// Config is the [dead_letter.kafka] section.
type Config struct {
	Brokers  []string `toml:"brokers"`
	Topic    string   `toml:"topic"`
	ClientID string   `toml:"client_id"`
	// Timeout bounds the delivery of one dead letter, retries included.
	// When it runs out the batch it belongs to is not acknowledged, so the
	// input is read again later: nothing is lost.
	Timeout time.Duration        `toml:"timeout"`
	SASL    kafkaconn.SASLConfig `toml:"sasl"`
	TLS     kafkaconn.TLSConfig  `toml:"tls"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Topic: "entra-sspr-dead-letters", ClientID: "sspr-exporter", Timeout: 30 * time.Second}
}

// Validate returns every problem of c.
func (c Config) Validate() []error {
	errs := kafkaconn.ValidateBrokers("brokers", c.Brokers)
	if !kafkaconn.ValidateTopic(c.Topic) {
		errs = append(errs, fmt.Errorf("topic: %q is not a valid Kafka topic name", c.Topic))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive (got %s)", c.Timeout))
	}
	return append(errs, kafkaconn.Validate(c.SASL, c.TLS)...)
}

// Writer is a deadletter.Writer on a Kafka topic.
type Writer struct {
	cfg Config
	w   *kgo.Writer
	log *slog.Logger
}

// New returns a writer; it connects on first use.
func New(cfg Config, logger *slog.Logger) (*Writer, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("dead_letter.kafka: %w", errors.Join(errs...))
	}
	tr, err := kafkaconn.Transport(cfg.ClientID, cfg.Timeout, cfg.SASL, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("dead_letter.kafka: %w", err)
	}
	w := &kgo.Writer{
		Addr:         kgo.TCP(cfg.Brokers...),
		Topic:        cfg.Topic,
		Balancer:     &kgo.Hash{},
		RequiredAcks: kgo.RequireAll,
		BatchTimeout: time.Millisecond, // each dead letter is written alone, synchronously
		WriteTimeout: cfg.Timeout,
		MaxAttempts:  1, // retries are ours, with backoff
		Transport:    tr,
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{cfg: cfg, w: w, log: logger}, nil
}

// Write delivers r, retrying with backoff until the broker acknowledged it,
// the configured timeout ran out or ctx ended.
func (w *Writer) Write(ctx context.Context, r deadletter.Record) error {
	value, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("dead letter encode: %w", err)
	}
	msg := kgo.Message{
		// Dead letters of one input partition or file stay in order.
		Key:   []byte(r.Source.Kind + "/" + r.Source.Topic + r.Source.File + "/" + r.Source.Partition),
		Value: value,
		Headers: []kgo.Header{
			{Key: "dead_letter", Value: []byte(fmt.Sprint(r.DeadLetter))},
			{Key: "stage", Value: []byte(r.Stage)},
			{Key: "reason", Value: []byte(r.Reason)},
			{Key: "content-type", Value: []byte("application/json")},
		},
	}
	if r.Sink != "" {
		msg.Headers = append(msg.Headers, kgo.Header{Key: "sink", Value: []byte(r.Sink)})
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	b := backoff.Backoff()
	for attempt := 1; ; attempt++ {
		err = w.w.WriteMessages(ctx, msg)
		if err == nil {
			return nil
		}
		if errors.Is(err, kgo.MessageSizeTooLarge) {
			// Keep the position and the reason; the payload cannot go.
			r.SetPayload(nil)
			r.Raw = nil
			r.Error += " (payload too large for the dead-letter topic; dropped from this copy)"
			if value, err = json.Marshal(r); err == nil {
				msg.Value = value
				continue
			}
		}
		w.log.Warn("dead letter not delivered to Kafka, retrying", "topic", w.cfg.Topic, "attempt", attempt, "error", err.Error(), "hint", kafkaconn.Hint(err))
		if !retry.Wait(ctx, b.Next()) {
			return fmt.Errorf("dead letter to Kafka topic %s: %w", w.cfg.Topic, err)
		}
	}
}

// Close flushes and closes the producer.
func (w *Writer) Close() error {
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("dead_letter.kafka close: %w", err)
	}
	return nil
}
