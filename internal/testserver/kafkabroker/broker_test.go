package kafkabroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestBrokerListenersAndRestart checks every listener accepts the clients it
// is meant for, rejects a client without a certificate on the MTLS listener,
// and that data survives Stop and Restart on the same ports.
func TestBrokerListenersAndRestart(t *testing.T) {
	b := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c := &kafka.Client{Addr: kafka.TCP(b.PlainAddr()), Timeout: 10 * time.Second}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "t", NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil || res.Errors["t"] != nil {
		t.Fatalf("create topic: %v %v", err, res)
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.CAPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	cert, err := tls.LoadX509KeyPair(b.ClientCertFile(), b.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	mtls := &kafka.Dialer{Timeout: 5 * time.Second, TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	conn, err := mtls.DialContext(ctx, "tcp", b.MTLSAddr())
	if err != nil {
		t.Fatalf("mtls with client certificate: %v", err)
	}
	if _, err := conn.ReadPartitions("t"); err != nil {
		t.Fatalf("mtls metadata: %v", err)
	}
	_ = conn.Close()

	noCert := &kafka.Dialer{Timeout: 5 * time.Second, TLS: &tls.Config{RootCAs: pool}}
	if conn, err := noCert.DialContext(ctx, "tcp", b.MTLSAddr()); err == nil {
		_, err = conn.ReadPartitions("t")
		_ = conn.Close()
		if err == nil {
			t.Fatal("mtls listener accepted a client without certificate")
		}
	}

	w := &kafka.Writer{Addr: kafka.TCP(b.PlainAddr()), Topic: "t", BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("before")}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	_ = w.Close()

	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.PlainAddr()}, Topic: "t", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	if string(m.Value) != "before" {
		t.Fatalf("read %q after restart, want %q", m.Value, "before")
	}
}
