package deliver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/webhook"
	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/file"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/kafka"
)

// File appends alerts as NDJSON lines, synced before Send returns.
type File struct{ w *file.Writer }

// OpenFile opens path for appending ("-" writes to std).
func OpenFile(path string, std io.Writer, logger *slog.Logger) (*File, error) {
	w, err := file.OpenWriter(file.Options{Path: path, Std: std, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("alerts file: %w", err)
	}
	return &File{w: w}, nil
}

// Name names the output in errors.
func (*File) Name() string { return "file" }

// Send writes and syncs the alerts.
func (f *File) Send(_ context.Context, alerts []detect.Alert) error {
	lines, err := encode(alerts)
	if err != nil {
		return err
	}
	if err := f.w.WriteLines(lines...); err != nil {
		return err
	}
	return f.w.Sync()
}

// Close closes the file.
func (f *File) Close(context.Context) error { return f.w.Close() }

// Webhook posts each alert, in order.
type Webhook struct{ s *webhook.Sender }

// NewWebhook returns the webhook output of cfg.
func NewWebhook(cfg webhook.Config) (*Webhook, error) {
	s, err := webhook.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Webhook{s: s}, nil
}

// Name names the output in errors.
func (*Webhook) Name() string { return "webhook" }

// Send posts every alert; it stops at the first that the endpoint does
// not take after its retries.
func (w *Webhook) Send(ctx context.Context, alerts []detect.Alert) error {
	bodies, err := encode(alerts)
	if err != nil {
		return err
	}
	for i, b := range bodies {
		if err := w.s.Send(ctx, alerts[i].ID, bytes.TrimSuffix(b, []byte("\n"))); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the connections.
func (w *Webhook) Close(context.Context) error { w.s.Close(); return nil }

// Kafka produces one message per alert, keyed by its id, acknowledged by
// all in-sync replicas before Send returns.
type Kafka struct{ w *kgo.Writer }

// NewKafka returns a producer to topic over the connection of cfg (the
// [output.kafka] settings).
func NewKafka(cfg kafka.Config, topic string) (*Kafka, error) {
	tr, err := kafkaconn.Transport(cfg.ClientID, cfg.DialTimeout, cfg.SASL, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("alerts kafka: %w", err)
	}
	return &Kafka{w: &kgo.Writer{
		Addr: kgo.TCP(cfg.Brokers...), Topic: topic, Balancer: kgo.Murmur2Balancer{},
		RequiredAcks: kgo.RequireAll, WriteTimeout: cfg.WriteTimeout, ReadTimeout: cfg.WriteTimeout,
		BatchTimeout: cfg.Batch.Linger + 1, Transport: tr,
	}}, nil
}

// Name names the output in errors.
func (*Kafka) Name() string { return "kafka" }

// Send produces the alerts.
func (k *Kafka) Send(ctx context.Context, alerts []detect.Alert) error {
	bodies, err := encode(alerts)
	if err != nil {
		return err
	}
	msgs := make([]kgo.Message, len(alerts))
	for i := range alerts {
		msgs[i] = kgo.Message{Key: []byte(alerts[i].ID), Value: bytes.TrimSuffix(bodies[i], []byte("\n")),
			Headers: []kgo.Header{{Key: "rule.id", Value: []byte(alerts[i].RuleID)}}}
	}
	return k.w.WriteMessages(ctx, msgs...)
}

// Close flushes and closes the producer.
func (k *Kafka) Close(context.Context) error { return k.w.Close() }
