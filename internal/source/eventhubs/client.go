// Package eventhubs is the Azure Event Hubs source: a processor that shares
// the partitions of one consumer group between instances through a blob
// checkpoint store, hands out one partition's events at a time as a batch,
// and checkpoints a batch only once it is acknowledged.
package eventhubs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2/checkpoints"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/coder/websocket"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Kind is the Position.Kind of Event Hubs bodies.
const Kind = "eventhubs"

// Source reads an event hub through a load-balancing processor.
type Source struct {
	cfg       Config
	log       *slog.Logger
	hub       string
	namespace string
	consumer  *azeventhubs.ConsumerClient
	store     azeventhubs.CheckpointStore
	container *container.Client
	opts      azeventhubs.ProcessorOptions

	checkpointWarn *retry.Limiter // one warning a minute while checkpoints fail

	// parts hands out the partitions' batches; partition ids key them.
	parts *partitioned.Source[string, *azeventhubs.ReceivedEventData]
}

var (
	_ stream.Source    = (*Source)(nil)
	_ stream.Readiness = (*Source)(nil)
)

// errStarting is the readiness before the event hub was first reached.
var errStarting = errors.New("eventhubs: starting")

// New builds the clients; Start runs the processor.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("eventhubs config: %w", errors.Join(errs...))
	}
	if logger == nil {
		logger = slog.Default()
	}
	sdkLog.install()
	s := &Source{
		cfg:            cfg,
		log:            logger,
		checkpointWarn: retry.NewLimiter(time.Minute),
		parts: partitioned.New[string, *azeventhubs.ReceivedEventData](partitioned.Options{
			Name: "eventhubs", MaxBatchesInMemory: cfg.MaxBatchesInMemory, WarnEvery: time.Minute,
		}),
	}
	s.parts.SetReady(errStarting)

	var cred azcore.TokenCredential
	if cfg.ConnectionString.IsZero() || cfg.CheckpointStore.ConnectionString.IsZero() {
		var err error
		cred, err = newCredential(cfg)
		if err != nil {
			return nil, err
		}
	}
	if err := s.newConsumer(cred, azeventhubs.RetryOptions{}); err != nil {
		return nil, err
	}
	if err := s.newStore(cred, blobClientOptions()); err != nil {
		_ = s.consumer.Close(context.Background())
		return nil, err
	}

	s.opts = azeventhubs.ProcessorOptions{
		LoadBalancingStrategy:       azeventhubs.ProcessorStrategy(cfg.LoadBalancing),
		UpdateInterval:              cfg.UpdateInterval,
		PartitionExpirationDuration: cfg.PartitionExpiration,
		Prefetch:                    cfg.Prefetch,
		StartPositions:              azeventhubs.StartPositions{Default: startPosition(cfg)},
	}
	return s, nil
}

// Start runs the processor and the stats refresh under ctx, in the
// background, until ctx ends or Close; it does not wait for the event hub
// to be reachable (see Ready).
func (s *Source) Start(ctx context.Context) error {
	// Before the processor opens a link: the SDK's reports tell failing
	// partitions from idle ones.
	sdkLog.add(s)
	err := s.parts.Start(ctx, s.supervise, func(ctx context.Context) {
		s.parts.Watch(ctx, s.cfg.StatsInterval, s.refreshEnds)
	})
	if err != nil && s.parts.Closing() {
		sdkLog.remove(s) // Close has removed it already
	}
	return err
}

func newCredential(cfg Config) (azcore.TokenCredential, error) {
	opts := &azidentity.DefaultAzureCredentialOptions{}
	if cfg.AuthorityHost != "" {
		opts.ClientOptions.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.AuthorityHost}
	}
	cred, err := azidentity.NewDefaultAzureCredential(opts)
	if err != nil {
		return nil, fmt.Errorf("eventhubs: default Azure credential: %w", err)
	}
	return cred, nil
}

// newConsumer creates the consumer client; retry is the SDK's retry policy
// (the zero value is the SDK's default).
func (s *Source) newConsumer(cred azcore.TokenCredential, retry azeventhubs.RetryOptions) error {
	opts := &azeventhubs.ConsumerClientOptions{ApplicationID: "sspr-exporter", RetryOptions: retry}
	if s.cfg.WebSockets {
		dial, err := webSocketDialer(s.cfg)
		if err != nil {
			return err
		}
		opts.NewWebSocketConn = dial
	}
	var err error
	if !s.cfg.ConnectionString.IsZero() {
		props, perr := azeventhubs.ParseConnectionString(s.cfg.ConnectionString.Reveal())
		if perr != nil {
			return errors.New("eventhubs: connection_string: not a valid Event Hubs connection string")
		}
		s.namespace = props.FullyQualifiedNamespace
		hub := s.cfg.EventHub
		s.hub = hub
		if props.EntityPath != nil {
			hub, s.hub = "", *props.EntityPath // the SDK refuses both
		}
		s.consumer, err = azeventhubs.NewConsumerClientFromConnectionString(s.cfg.ConnectionString.Reveal(), hub, s.cfg.ConsumerGroup, opts)
	} else {
		s.namespace, s.hub = s.cfg.fullyQualifiedNamespace(), s.cfg.EventHub
		s.consumer, err = azeventhubs.NewConsumerClient(s.namespace, s.hub, s.cfg.ConsumerGroup, cred, opts)
	}
	if err != nil {
		return fmt.Errorf("eventhubs: consumer client for %s/%s: %w", s.namespace, s.hub, err)
	}
	return nil
}

func (s *Source) newStore(cred azcore.TokenCredential, opts *container.ClientOptions) error {
	cs := s.cfg.CheckpointStore
	var err error
	if !cs.ConnectionString.IsZero() {
		s.container, err = containerFromConnectionString(cs.ConnectionString, cs.Container, opts)
		if err != nil {
			return fmt.Errorf("eventhubs: checkpoint_store.connection_string: %w", err)
		}
	} else {
		u, perr := url.JoinPath(cs.AccountURL, cs.Container)
		if perr != nil {
			return fmt.Errorf("eventhubs: checkpoint_store.account_url: %w", perr)
		}
		s.container, err = container.NewClient(u, cred, opts)
		if err != nil {
			return fmt.Errorf("eventhubs: checkpoint container %s: %w", u, err)
		}
	}
	s.store, err = checkpoints.NewBlobStore(s.container, nil)
	if err != nil {
		return fmt.Errorf("eventhubs: checkpoint store: %w", err)
	}
	return nil
}

// blobRetry is the storage client's retry policy; tests shorten it to see
// a storage outage stop the processor within seconds.
var blobRetry policy.RetryOptions

func blobClientOptions() *container.ClientOptions {
	return &container.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: blobRetry}}
}

// webSocketDialer returns the SDK hook that opens AMQP over WebSockets,
// through the configured proxy or, when none, the environment's.
func webSocketDialer(cfg Config) (func(context.Context, azeventhubs.WebSocketConnParams) (net.Conn, error), error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if !cfg.ProxyURL.IsZero() {
		u, err := url.Parse(cfg.ProxyURL.Reveal())
		if err != nil {
			return nil, errors.New("eventhubs: proxy_url: not a valid URL")
		}
		transport.Proxy = http.ProxyURL(u)
	}
	client := &http.Client{Transport: transport}
	return func(ctx context.Context, args azeventhubs.WebSocketConnParams) (net.Conn, error) {
		c, _, err := websocket.Dial(ctx, args.Host, &websocket.DialOptions{HTTPClient: client, Subprotocols: []string{"amqp"}})
		if err != nil {
			return nil, fmt.Errorf("eventhubs websocket dial: %w", err)
		}
		// The connection outlives the dial's context.
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
	}, nil
}

func startPosition(cfg Config) azeventhubs.StartPosition {
	switch cfg.StartPosition {
	case StartLatest:
		return azeventhubs.StartPosition{Latest: to.Ptr(true)}
	case StartEnqueuedTime:
		t, _ := time.Parse(time.RFC3339, cfg.StartEnqueuedTime) // checked by Validate
		return azeventhubs.StartPosition{EnqueuedTime: &t, Inclusive: true}
	default:
		return azeventhubs.StartPosition{Earliest: to.Ptr(true), Inclusive: true}
	}
}

// Read returns the next batch of one partition. It returns io.EOF once
// Close has begun.
func (s *Source) Read(ctx context.Context) (stream.Batch, error) { return s.parts.Read(ctx) }

// Ready reports whether the processor is running against the event hub and
// the checkpoint store, and no partition failed to be read for
// unhealthy_after.
func (s *Source) Ready() error {
	if err := s.parts.Ready(); err != nil {
		return err
	}
	return s.partitionsReady()
}

// checkpointError marks a not-ready reason that the next written
// checkpoint clears.
type checkpointError struct{ error }

func (e checkpointError) Unwrap() error { return e.error }

func isCheckpointError(err error) bool {
	_, ok := err.(checkpointError)
	return ok
}

// Close stops handing out batches, waits (within ctx) for the batches
// already handed out to be acknowledged and checkpointed, then releases the
// partitions, waits for the goroutines of Start and closes every client.
func (s *Source) Close(ctx context.Context) error {
	return s.parts.Close(ctx, func(ctx context.Context) error {
		sdkLog.remove(s)
		if err := s.consumer.Close(ctx); err != nil {
			return fmt.Errorf("eventhubs close: consumer client: %w", err)
		}
		return nil
	})
}

// supervisorRetry spaces the restarts of a stopped processor.
var supervisorRetry = retry.Config{InitialBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second}

// supervise runs processors one after the other: Run ends on any checkpoint
// store error (for example storage unreachable for a moment), and a stopped
// processor cannot be restarted.
func (s *Source) supervise(ctx context.Context) {
	backoff := supervisorRetry.Backoff()
	failing := false
	containerChecked := false
	for {
		if !containerChecked {
			containerChecked = s.ensureContainer(ctx)
		}
		started := time.Now()
		err := s.runProcessor(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("processor stopped")
		}
		err = secret.RedactError(compactStorageError(err, s.cfg.CheckpointStore.auth()))
		s.parts.SetReady(fmt.Errorf("eventhubs %s/%s: %w", s.namespace, s.hub, err))
		if time.Since(started) > supervisorRetry.MaxBackoff {
			// It ran a while: this is a new outage, not the same one.
			backoff.Reset()
			failing = false
		}
		delay := backoff.Next()
		// One warning per outage; the readiness carries the latest cause.
		if !failing {
			s.log.Warn("event hubs processor stopped, restarting", "hub", s.hub, "error", err)
			failing = true
		} else {
			s.log.Debug("event hubs processor restart failed", "hub", s.hub, "error", err, "retry_in", delay)
		}
		if !retry.Wait(ctx, delay) {
			return
		}
	}
}

// ensureContainer creates the checkpoint container when it is missing and
// reports whether there is nothing more to do. Without the right to create
// containers the processor's own error says what is wrong.
func (s *Source) ensureContainer(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := s.container.Create(cctx, nil)
	if err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return true
	}
	var rerr *azcore.ResponseError
	if errors.As(err, &rerr) {
		s.log.Debug("cannot create the checkpoint container", "container", s.cfg.CheckpointStore.Container, "status", rerr.StatusCode)
		return true
	}
	return false
}

// runProcessor runs one processor until it stops, with a worker per
// partition it owns, and returns when every worker has returned.
func (s *Source) runProcessor(ctx context.Context) error {
	props, err := s.consumer.GetEventHubProperties(ctx, nil)
	if err != nil {
		return fmt.Errorf("event hub properties: %w", err)
	}
	proc, err := azeventhubs.NewProcessor(s.consumer, s.store, &s.opts)
	if err != nil {
		return fmt.Errorf("new processor: %w", err)
	}
	for _, id := range props.PartitionIDs {
		s.parts.Partition(id) // every partition shows in Stats
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan struct{})
	var workers sync.WaitGroup
	workers.Add(1)
	go func() {
		defer workers.Done()
		for {
			pc := proc.NextPartitionClient(runCtx)
			if pc == nil {
				return
			}
			workers.Add(1)
			go func() {
				defer workers.Done()
				s.runPartition(runCtx, pc, runDone)
			}()
		}
	}()
	s.parts.SetReady(nil)
	err = proc.Run(runCtx)
	close(runDone)
	cancel()
	workers.Wait()
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	return nil
}
