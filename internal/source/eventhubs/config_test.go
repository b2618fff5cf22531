package eventhubs

import (
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

func validConfig() Config {
	c := DefaultConfig()
	c.Namespace = "contoso"
	c.EventHub = "insights-logs-auditlogs"
	c.CheckpointStore.AccountURL = "https://contosockpt.blob.core.windows.net/"
	return c
}

func TestDefaultsNeedOnlyWhereToRead(t *testing.T) {
	if errs := validConfig().Validate(); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
	errs := DefaultConfig().Validate()
	var keys []string
	for _, e := range errs {
		keys = append(keys, strings.SplitN(e.Error(), ":", 2)[0])
	}
	want := "namespace event_hub checkpoint_store.account_url"
	if strings.Join(keys, " ") != want {
		t.Fatalf("default config errors %v, want keys %s", errs, want)
	}
}

func TestValidate(t *testing.T) {
	const cs = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0LWtleQ=="
	// storeCS stores checkpoints with a connection string instead of the URL.
	storeCS := func(cs string) func(*Config) {
		return func(c *Config) {
			c.CheckpointStore.AccountURL = ""
			c.CheckpointStore.ConnectionString = secret.New(cs)
		}
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string // the key the only error starts with; empty for none
	}{
		{"full namespace", func(c *Config) { c.Namespace = "contoso.servicebus.usgovcloudapi.net" }, ""},
		{"connection string", func(c *Config) { c.Namespace = ""; c.ConnectionString = secret.New(cs) }, ""},
		{"entity path", func(c *Config) {
			c.Namespace, c.EventHub = "", ""
			c.ConnectionString = secret.New(cs + ";EntityPath=audit")
		}, ""},
		{"entity path differs", func(c *Config) {
			c.Namespace = ""
			c.ConnectionString = secret.New(cs + ";EntityPath=audit")
		}, "event_hub"},
		{"bad connection string", func(c *Config) {
			c.Namespace = ""
			c.ConnectionString = secret.New("not=valid=at all;SharedAccessKey=hunter2")
		}, "connection_string"},
		{"namespace and connection string", func(c *Config) { c.ConnectionString = secret.New(cs) }, "namespace"},
		{"no hub", func(c *Config) { c.EventHub = "" }, "event_hub"},
		{"short namespace without suffix", func(c *Config) { c.NamespaceSuffix = "" }, "namespace_suffix"},
		{"authority host", func(c *Config) { c.AuthorityHost = "login.example" }, "authority_host"},
		{"group", func(c *Config) { c.ConsumerGroup = "" }, "consumer_group"},
		{"start position", func(c *Config) { c.StartPosition = "beginning" }, "start_position"},
		{"enqueued time", func(c *Config) {
			c.StartPosition, c.StartEnqueuedTime = StartEnqueuedTime, "2026-01-02T03:04:05Z"
		}, ""},
		{"enqueued time missing", func(c *Config) { c.StartPosition = StartEnqueuedTime }, "start_enqueued_time"},
		{"enqueued time unused", func(c *Config) { c.StartEnqueuedTime = "2026-01-02T03:04:05Z" }, "start_enqueued_time"},
		{"batch size", func(c *Config) { c.ReceiveBatchSize = 0 }, "receive_batch_size"},
		{"receive wait", func(c *Config) { c.ReceiveWait = 0 }, "receive_wait"},
		{"prefetch off", func(c *Config) { c.Prefetch = -1 }, ""},
		{"prefetch", func(c *Config) { c.Prefetch = 6000 }, "prefetch"},
		{"strategy", func(c *Config) { c.LoadBalancing = "fair" }, "load_balancing"},
		{"greedy", func(c *Config) { c.LoadBalancing = StrategyGreedy }, ""},
		{"update interval", func(c *Config) { c.UpdateInterval = 0; c.PartitionExpiration = time.Second }, "update_interval"},
		{"expiration", func(c *Config) { c.PartitionExpiration = c.UpdateInterval }, "partition_expiration"},
		{"proxy without websockets", func(c *Config) { c.ProxyURL = secret.New("http://proxy:3128") }, "proxy_url"},
		{"proxy", func(c *Config) { c.WebSockets = true; c.ProxyURL = secret.New("http://u:p@proxy:3128") }, ""},
		{"stats interval", func(c *Config) { c.StatsInterval = 0 }, "stats_interval"},
		{"unhealthy after", func(c *Config) { c.UnhealthyAfter = 0 }, "unhealthy_after"},
		{"both stores", func(c *Config) {
			c.CheckpointStore.ConnectionString = secret.New("AccountName=contosockpt;AccountKey=c2VjcmV0LWtleQ==")
		}, "checkpoint_store.account_url"},
		{"store connection string", storeCS("DefaultEndpointsProtocol=https;AccountName=contosockpt;AccountKey=c2VjcmV0LWtleQ==;EndpointSuffix=core.windows.net"), ""},
		{"store connection string with a SAS", storeCS("BlobEndpoint=https://contosockpt.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig=hunter2"), ""},
		// What the blob client refuses at start is refused here too.
		{"store shortcut the blob client refuses", storeCS("UseDevelopmentStorage=true"), "checkpoint_store.connection_string"},
		{"store key not base64", storeCS("AccountName=contosockpt;AccountKey=hunter2!;EndpointSuffix=core.windows.net"), "checkpoint_store.connection_string"},
		{"store without a key", storeCS("AccountName=contosockpt"), "checkpoint_store.connection_string"},
		{"store not key=value", storeCS("hunter2"), "checkpoint_store.connection_string"},
		{"account url", func(c *Config) { c.CheckpointStore.AccountURL = "contosockpt" }, "checkpoint_store.account_url"},
		{"container", func(c *Config) { c.CheckpointStore.Container = "Checkpoints" }, "checkpoint_store.container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			errs := c.Validate()
			if tt.want == "" {
				if len(errs) != 0 {
					t.Fatalf("errors %v, want none", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tt.want+":") {
				t.Fatalf("errors %v, want one for %s", errs, tt.want)
			}
			for _, e := range errs {
				if strings.Contains(e.Error(), "hunter2") || strings.Contains(e.Error(), "c2VjcmV0") || strings.Contains(e.Error(), "u:p@") {
					t.Fatalf("error reveals a secret: %v", e)
				}
			}
		})
	}
}

func TestFullyQualifiedNamespace(t *testing.T) {
	c := validConfig()
	if got := c.fullyQualifiedNamespace(); got != "contoso.servicebus.windows.net" {
		t.Fatalf("short name: %s", got)
	}
	c.NamespaceSuffix = ".servicebus.chinacloudapi.cn"
	if got := c.fullyQualifiedNamespace(); got != "contoso.servicebus.chinacloudapi.cn" {
		t.Fatalf("custom suffix: %s", got)
	}
	c.Namespace = "contoso.servicebus.usgovcloudapi.net"
	if got := c.fullyQualifiedNamespace(); got != c.Namespace {
		t.Fatalf("full name: %s", got)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(DefaultConfig(), nil); err == nil || !strings.Contains(err.Error(), "event_hub") {
		t.Fatalf("New(defaults) = %v", err)
	}
}
