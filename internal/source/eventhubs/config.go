package eventhubs

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Start positions used when a partition has no checkpoint yet.
const (
	StartEarliest     = "earliest"
	StartLatest       = "latest"
	StartEnqueuedTime = "enqueued_time"
)

// Load-balancing strategies of the processor.
const (
	StrategyBalanced = "balanced"
	StrategyGreedy   = "greedy"
)

// Config is the [input.eventhubs] section.
type Config struct {
	// ConnectionString is a namespace or event hub connection string (SAS).
	// When empty, Namespace is used with Microsoft Entra ID credentials.
	ConnectionString secret.String `toml:"connection_string"`
	// Namespace is the fully qualified namespace (contoso.servicebus.windows.net)
	// or its short name, completed with NamespaceSuffix.
	Namespace string `toml:"namespace"`
	// NamespaceSuffix completes a short Namespace; change it for national clouds.
	NamespaceSuffix string `toml:"namespace_suffix"`
	// AuthorityHost is the Microsoft Entra authority for national clouds
	// (e.g. https://login.microsoftonline.us/); empty means the public cloud.
	AuthorityHost string `toml:"authority_host"`
	// EventHub is the event hub name; it may be omitted when the connection
	// string has an EntityPath.
	EventHub      string `toml:"event_hub"`
	ConsumerGroup string `toml:"consumer_group"`

	// StartPosition applies to partitions without a checkpoint: earliest,
	// latest or enqueued_time (with StartEnqueuedTime, RFC 3339).
	StartPosition     string `toml:"start_position"`
	StartEnqueuedTime string `toml:"start_enqueued_time"`

	// ReceiveBatchSize is the most events in one batch; ReceiveWait is how
	// long a partition waits to fill a batch before handing out what it has.
	ReceiveBatchSize int           `toml:"receive_batch_size"`
	ReceiveWait      time.Duration `toml:"receive_wait"`
	// Prefetch is the per-partition prefetch buffer; -1 disables it.
	// Prefetched events sit in memory outside max_batches_in_memory, so it
	// is kept moderate: without it the SDK receives about ten times slower.
	Prefetch int32 `toml:"prefetch"`
	// MaxBatchesInMemory bounds the batches received but not yet
	// acknowledged, over all partitions: with receive_batch_size it bounds
	// the memory the source holds when a sink slows or stops.
	MaxBatchesInMemory int `toml:"max_batches_in_memory"`

	LoadBalancing string `toml:"load_balancing"`
	// UpdateInterval is how often ownership is renewed and rebalanced.
	UpdateInterval time.Duration `toml:"update_interval"`
	// PartitionExpiration is how long an ownership not renewed stays valid.
	PartitionExpiration time.Duration `toml:"partition_expiration"`

	// WebSockets carries AMQP over WebSockets on port 443, for networks that
	// block 5671; ProxyURL (http or https) then routes it through a proxy.
	WebSockets bool          `toml:"websockets"`
	ProxyURL   secret.String `toml:"proxy_url"`

	// StatsInterval is how often the partitions' last enqueued sequence
	// numbers are read for Stats.
	StatsInterval time.Duration `toml:"stats_interval"`
	// UnhealthyAfter is how long a partition may fail to be read (hub
	// unreachable, consumer group missing, access refused) before Ready
	// reports it; the SDK retries meanwhile and a warning is logged at once.
	UnhealthyAfter time.Duration `toml:"unhealthy_after"`

	CheckpointStore CheckpointStoreConfig `toml:"checkpoint_store"`
}

// CheckpointStoreConfig is the blob container holding checkpoints and ownership.
type CheckpointStoreConfig struct {
	// ConnectionString is a storage account connection string; when empty,
	// AccountURL is used with Microsoft Entra ID credentials.
	ConnectionString secret.String `toml:"connection_string"`
	AccountURL       string        `toml:"account_url"`
	Container        string        `toml:"container"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		NamespaceSuffix:     "servicebus.windows.net",
		ConsumerGroup:       azeventhubs.DefaultConsumerGroup,
		StartPosition:       StartEarliest,
		ReceiveBatchSize:    64,
		MaxBatchesInMemory:  4,
		ReceiveWait:         time.Second,
		Prefetch:            100,
		LoadBalancing:       StrategyBalanced,
		UpdateInterval:      10 * time.Second,
		PartitionExpiration: time.Minute,
		StatsInterval:       30 * time.Second,
		UnhealthyAfter:      time.Minute,
		CheckpointStore:     CheckpointStoreConfig{Container: "sspr-exporter-checkpoints"},
	}
}

// Validate returns every problem, each prefixed with its key.
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.ConnectionString.IsZero() && c.Namespace == "" {
		add("namespace: set it or connection_string")
	}
	if !c.ConnectionString.IsZero() && c.Namespace != "" {
		add("namespace: set either it or connection_string, not both")
	}
	if !c.ConnectionString.IsZero() {
		props, err := azeventhubs.ParseConnectionString(c.ConnectionString.Reveal())
		switch {
		case err != nil:
			// The parser's message never quotes the string, but stay safe.
			add("connection_string: not a valid Event Hubs connection string")
		case props.EntityPath != nil && c.EventHub != "" && *props.EntityPath != c.EventHub:
			add("event_hub: %q differs from the connection string's EntityPath %q", c.EventHub, *props.EntityPath)
		case props.EntityPath == nil && c.EventHub == "":
			add("event_hub: required (the connection string has no EntityPath)")
		}
	} else if c.EventHub == "" {
		add("event_hub: required")
	}
	if c.Namespace != "" && !strings.Contains(c.Namespace, ".") && c.NamespaceSuffix == "" {
		add("namespace_suffix: required for the short namespace %q", c.Namespace)
	}
	if c.AuthorityHost != "" {
		if u, err := url.Parse(c.AuthorityHost); err != nil || u.Scheme != "https" || u.Host == "" {
			add("authority_host: must be an https URL")
		}
	}
	if c.ConsumerGroup == "" {
		add("consumer_group: required")
	}
	switch c.StartPosition {
	case StartEarliest, StartLatest:
		if c.StartEnqueuedTime != "" {
			add("start_enqueued_time: only used with start_position = %q", StartEnqueuedTime)
		}
	case StartEnqueuedTime:
		if _, err := time.Parse(time.RFC3339, c.StartEnqueuedTime); err != nil {
			add("start_enqueued_time: must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
	default:
		add("start_position: must be %s, %s or %s", StartEarliest, StartLatest, StartEnqueuedTime)
	}
	if c.ReceiveBatchSize < 1 || c.ReceiveBatchSize > 5000 {
		add("receive_batch_size: must be between 1 and 5000")
	}
	if c.ReceiveWait <= 0 {
		add("receive_wait: must be positive")
	}
	if c.Prefetch < -1 || c.Prefetch > 5000 {
		add("prefetch: must be -1 (off), 0 (SDK default) or up to 5000")
	}
	if c.MaxBatchesInMemory < 1 {
		add("max_batches_in_memory: must be at least 1")
	}
	if c.LoadBalancing != StrategyBalanced && c.LoadBalancing != StrategyGreedy {
		add("load_balancing: must be %s or %s", StrategyBalanced, StrategyGreedy)
	}
	if c.UpdateInterval <= 0 {
		add("update_interval: must be positive")
	}
	if c.PartitionExpiration <= c.UpdateInterval {
		add("partition_expiration: must be longer than update_interval")
	}
	if !c.ProxyURL.IsZero() {
		if !c.WebSockets {
			add("proxy_url: needs websockets = true (plain AMQP cannot go through an HTTP proxy)")
		}
		if u, err := url.Parse(c.ProxyURL.Reveal()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("proxy_url: must be an http or https URL")
		}
	}
	if c.StatsInterval <= 0 {
		add("stats_interval: must be positive")
	}
	if c.UnhealthyAfter <= 0 {
		add("unhealthy_after: must be positive")
	}

	cs := c.CheckpointStore
	if cs.ConnectionString.IsZero() && cs.AccountURL == "" {
		add("checkpoint_store.account_url: set it or checkpoint_store.connection_string")
	}
	if !cs.ConnectionString.IsZero() && cs.AccountURL != "" {
		add("checkpoint_store.account_url: set either it or checkpoint_store.connection_string, not both")
	}
	if !cs.ConnectionString.IsZero() {
		if _, err := containerFromConnectionString(cs.ConnectionString, cs.Container, nil); err != nil {
			add("checkpoint_store.connection_string: %w", err)
		}
	}
	if cs.AccountURL != "" {
		if u, err := url.Parse(cs.AccountURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("checkpoint_store.account_url: must be a URL such as https://account.blob.core.windows.net/")
		}
	}
	if !validContainerName(cs.Container) {
		add("checkpoint_store.container: must be 3-63 lowercase letters, digits and single hyphens")
	}
	return errs
}

// containerFromConnectionString is the one place where a storage
// connection string is parsed, so that Validate refuses exactly what the
// source's blob client would. The parser's messages never quote the string.
func containerFromConnectionString(cs secret.String, name string, opts *container.ClientOptions) (*container.Client, error) {
	c, err := container.NewClientFromConnectionString(cs.Reveal(), name, opts)
	if err != nil {
		return nil, fmt.Errorf("not a valid storage connection string: %w", secret.RedactError(err))
	}
	return c, nil
}

// fullyQualifiedNamespace completes a short namespace name with the suffix.
func (c Config) fullyQualifiedNamespace() string {
	if strings.Contains(c.Namespace, ".") || c.NamespaceSuffix == "" {
		return c.Namespace
	}
	return c.Namespace + "." + strings.TrimPrefix(c.NamespaceSuffix, ".")
}

func validContainerName(s string) bool {
	if len(s) < 3 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}
