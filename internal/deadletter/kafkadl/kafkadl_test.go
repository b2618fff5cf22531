package kafkadl

import (
	"context"
	"errors"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/kafkabroker"
)

func createTopic(t *testing.T, addr, topic string) {
	t.Helper()
	c := &kgo.Client{Addr: kgo.TCP(addr), Timeout: 30 * time.Second}
	res, err := c.CreateTopics(context.Background(), &kgo.CreateTopicsRequest{Topics: []kgo.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Errors {
		if e != nil && !errors.Is(e, kgo.TopicAlreadyExists) {
			t.Fatal(e)
		}
	}
}

func TestDeadLettersRoundTripThroughKafka(t *testing.T) {
	b := kafkabroker.Start(t, kafkabroker.Options{})
	const topic = "dead-letters"
	createTopic(t, b.PlainAddr(), topic)

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"plaintext", Config{Brokers: []string{b.PlainAddr()}}},
		{"sasl-scram-tls", Config{Brokers: []string{b.SASLAddr()},
			SASL: kafkaconn.SASLConfig{Mechanism: "scram-sha-512", Username: b.User(), Password: secret.New(b.Password())},
			TLS:  kafkaconn.TLSConfig{Enabled: true, CAFile: b.CAFile()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Brokers, cfg.SASL, cfg.TLS, cfg.Topic = tc.cfg.Brokers, tc.cfg.SASL, tc.cfg.TLS, topic
			w, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			seq := int64(7)
			sent := deadletter.New(time.Unix(1, 0), deadletter.StageDecode, deadletter.ReasonInvalidJSON,
				stream.Position{Kind: "eventhubs", Topic: "hub", Partition: "1", Offset: "7000", Sequence: &seq},
				errors.New("invalid JSON: "+tc.name), []byte{0xff, 'x'})
			if err := w.Write(context.Background(), sent); err != nil {
				t.Fatal(err)
			}
			r := kgo.NewReader(kgo.ReaderConfig{Brokers: []string{b.PlainAddr()}, Topic: topic, GroupID: "check-" + tc.name, StartOffset: kgo.FirstOffset})
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("dead letter never arrived: %v", err)
				}
				got, ok := deadletter.Parse(m.Value)
				if !ok {
					t.Fatalf("not a dead letter: %s", m.Value)
				}
				if got.Error != sent.Error {
					continue // the other subtest's record
				}
				payload, _ := got.Payload()
				if string(payload) != "\xffx" || got.Source.Partition != "1" || *got.Source.Sequence != 7 {
					t.Errorf("got %+v", got)
				}
				headers := map[string]string{}
				for _, h := range m.Headers {
					headers[h.Key] = string(h.Value)
				}
				if headers["stage"] != "decode" || headers["dead_letter"] != "1" || headers["reason"] != "invalid_json" || got.Reason != deadletter.ReasonInvalidJSON {
					t.Errorf("headers %v", headers)
				}
				return
			}
		})
	}
}

func TestUnreachableBrokerFailsWithinTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.Timeout = 500 * time.Millisecond
	w, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(context.Background(), deadletter.New(time.Now(), deadletter.StageDecode, deadletter.ReasonInvalidJSON, stream.Position{Kind: "stdin"}, errors.New("x"), nil)); err == nil {
		t.Fatal("write to an unreachable broker succeeded")
	}
}

func TestValidate(t *testing.T) {
	if errs := (Config{Topic: "bad topic!"}).Validate(); len(errs) < 3 {
		t.Errorf("want brokers, topic and timeout problems, got %v", errs)
	}
	cfg := DefaultConfig()
	cfg.Brokers = []string{"localhost:9092"}
	if errs := cfg.Validate(); len(errs) != 0 {
		t.Errorf("defaults with a broker: %v", errs)
	}
}
