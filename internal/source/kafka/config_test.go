package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

func validConfig() Config {
	c := DefaultConfig()
	c.Brokers = []string{"contoso.servicebus.windows.net:9093"}
	c.Topics = []string{"insights-logs-auditlogs"}
	return c
}

func TestDefaultConfigNeedsOnlyBrokersAndTopics(t *testing.T) {
	if errs := validConfig().Validate(); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
	errs := DefaultConfig().Validate()
	joined := joinErrs(errs)
	for _, key := range []string{"brokers:", "topics:"} {
		if !strings.Contains(joined, key) {
			t.Errorf("default config errors %q lack %q", joined, key)
		}
	}
}

func TestEventHubsSettingsValidate(t *testing.T) {
	c := validConfig()
	c.SASL = kafkaconn.SASLConfig{Mechanism: "plain", Username: "$ConnectionString",
		Password: secret.New("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=abc=")}
	c.TLS.Enabled = true
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("event hubs config: %v", errs)
	}
	c.TLS.Enabled = false
	if joined := joinErrs(c.Validate()); !strings.Contains(joined, "tls.enabled: must be true with sasl.mechanism \"plain\"") {
		t.Fatalf("plain without TLS: %q", joined)
	}
	if strings.Contains(joinErrs(c.Validate()), "SharedAccessKey") {
		t.Fatal("the password appears in a validation error")
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	c := validConfig()
	c.Brokers = []string{"nohost"}
	c.Topics = []string{"ok", "bad topic", "ok"}
	c.GroupID = ""
	c.StartOffset = "beginning"
	c.SessionTimeout = time.Second
	c.HeartbeatInterval = 0
	c.RebalanceTimeout = 0
	c.RevokeGrace = -time.Second
	c.RejoinBackoff = 0
	c.DialTimeout = 0
	c.ErrorLogInterval = 0
	c.StatsInterval = 0
	c.PartitionWatchInterval = 0
	c.Batch = BatchConfig{MaxMessages: 0, MaxWait: 0, FetchMaxBytes: 10}
	c.SASL = kafkaconn.SASLConfig{Mechanism: "gssapi"}
	c.TLS = kafkaconn.TLSConfig{CAFile: "/nonexistent/ca.pem", CertFile: "x.pem"}
	joined := joinErrs(c.Validate())
	for _, key := range []string{
		"brokers[0]:", "topics[1]:", "topics[2]: \"ok\" is listed twice", "group_id:", "start_offset:",
		"session_timeout:", "heartbeat_interval:", "rebalance_timeout:", "revoke_grace:", "rejoin_backoff:",
		"dial_timeout:", "error_log_interval:", "stats_interval:", "partition_watch_interval:", "batch.max_messages:", "batch.max_wait:",
		"batch.fetch_max_bytes:", "sasl.mechanism:", "tls.cert_file:", "tls.enabled:", "tls.ca_file:",
	} {
		if !strings.Contains(joined, "\n"+key) {
			t.Errorf("errors lack %q:%s", key, joined)
		}
	}
	c = validConfig()
	c.HeartbeatInterval = 20 * time.Second
	c.RevokeGrace = c.RebalanceTimeout
	joined = joinErrs(c.Validate())
	for _, want := range []string{"heartbeat_interval: must be at most a third", "revoke_grace: must be shorter"} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors lack %q:%s", want, joined)
		}
	}
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	if _, err := New(DefaultConfig(), nil); err == nil || !strings.Contains(err.Error(), "brokers:") {
		t.Fatalf("New with no brokers: %v", err)
	}
}

func joinErrs(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n" + e.Error())
	}
	return b.String()
}
