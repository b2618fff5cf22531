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
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
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

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
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

	checkpointWarn rateLimit // one warning a minute while checkpoints fail

	batches  chan stream.Batch // partition workers hand batches to Read
	memory   chan struct{}     // a token per batch in memory (received, not yet acked)
	stopping chan struct{}     // closed when Close begins: no new batches
	cancel   context.CancelFunc
	wg       sync.WaitGroup // supervisor and stats loop
	inflight counter        // batches handed out and not yet acknowledged

	closeOnce sync.Once
	closeErr  error

	mu         sync.Mutex
	ready      error
	partitions map[string]*partition
}

var (
	_ stream.Source    = (*Source)(nil)
	_ stream.Readiness = (*Source)(nil)
)

// errStarting is the readiness before the event hub was first reached.
var errStarting = errors.New("eventhubs: starting")

// New builds the clients and starts the processor in the background; it
// does not wait for the event hub to be reachable (see Ready).
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("eventhubs config: %w", errors.Join(errs...))
	}
	if logger == nil {
		logger = slog.Default()
	}
	sdkLog.install()
	s := &Source{
		cfg:        cfg,
		log:        logger,
		batches:    make(chan stream.Batch),
		memory:     make(chan struct{}, cfg.MaxBatchesInMemory),
		stopping:   make(chan struct{}),
		ready:      errStarting,
		partitions: map[string]*partition{},
	}

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

	sdkLog.add(s)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go s.supervise(ctx)
	go s.statsLoop(ctx)
	return s, nil
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
func (s *Source) Read(ctx context.Context) (stream.Batch, error) {
	select {
	case b := <-s.batches:
		return b, nil
	case <-s.stopping:
		return stream.Batch{}, io.EOF
	case <-ctx.Done():
		return stream.Batch{}, ctx.Err()
	}
}

// Ready reports whether the processor is running against the event hub and
// the checkpoint store, and no partition failed to be read for
// unhealthy_after.
func (s *Source) Ready() error {
	s.mu.Lock()
	err := s.ready
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.partitionsReady()
}

func (s *Source) setReady(err error) {
	s.mu.Lock()
	s.ready = err
	s.mu.Unlock()
}

// checkpointError marks a not-ready reason that the next written
// checkpoint clears.
type checkpointError struct{ error }

func (e checkpointError) Unwrap() error { return e.error }

func (s *Source) clearCheckpointError() {
	s.mu.Lock()
	if _, ok := s.ready.(checkpointError); ok {
		s.ready = nil
	}
	s.mu.Unlock()
}

// Close stops handing out batches, waits (within ctx) for the batches
// already handed out to be acknowledged and checkpointed, then releases the
// partitions and closes every client.
func (s *Source) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		close(s.stopping)
		var errs []error
		select {
		case <-s.inflight.zero():
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("eventhubs close: batches still unacknowledged: %w", ctx.Err()))
		}
		s.cancel()
		s.wg.Wait()
		sdkLog.remove(s)
		if err := s.consumer.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("eventhubs close: consumer client: %w", err))
		}
		s.setReady(errors.New("eventhubs: closed"))
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// supervise runs processors one after the other: Run ends on any checkpoint
// store error (for example storage unreachable for a moment), and a stopped
// processor cannot be restarted.
func (s *Source) supervise(ctx context.Context) {
	defer s.wg.Done()
	const minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	backoff := minBackoff
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
		s.setReady(fmt.Errorf("eventhubs %s/%s: %w", s.namespace, s.hub, err))
		if time.Since(started) > maxBackoff {
			// It ran a while: this is a new outage, not the same one.
			backoff, failing = minBackoff, false
		}
		// One warning per outage; the readiness carries the latest cause.
		if !failing {
			s.log.Warn("event hubs processor stopped, restarting", "hub", s.hub, "error", err)
			failing = true
		} else {
			s.log.Debug("event hubs processor restart failed", "hub", s.hub, "error", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
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
	s.mu.Lock()
	for _, id := range props.PartitionIDs {
		s.partitionLocked(id)
	}
	s.mu.Unlock()

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
	s.setReady(nil)
	err = proc.Run(runCtx)
	close(runDone)
	cancel()
	workers.Wait()
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	return nil
}

// session is one ownership of a partition by this instance: from the
// partition client's creation until it is closed.
type session struct {
	client *azeventhubs.ProcessorPartitionClient
	ended  atomic.Bool
	// rewind asks the worker to give the partition up so that it is read
	// again from the last checkpoint (a batch was not delivered).
	rewind chan struct{}
	once   sync.Once
}

// runPartition receives one partition's events until the partition client
// fails or is taken over, handing out one batch at a time.
// runDone closes when the processor stops (it closes its partition clients
// first, so their errors then are expected).
func (s *Source) runPartition(ctx context.Context, pc *azeventhubs.ProcessorPartitionClient, runDone <-chan struct{}) {
	id := pc.PartitionID()
	sess := &session{client: pc, rewind: make(chan struct{})}
	p := s.partition(id)
	p.begin(sess)
	// One line per claim and release, with the owner id of the checkpoint
	// store's ownership blobs, so that the logs of all instances tell who
	// held which partition when.
	owner := s.consumer.InstanceID()
	s.log.Info("event hubs partition claimed", "hub", s.hub, "partition", id, "owner", owner, "consumer_group", s.cfg.ConsumerGroup)
	reason := "stopped"
	defer func() {
		sess.ended.Store(true)
		p.end(sess)
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = pc.Close(closeCtx) // the link is gone or going; nothing to report
		cancel()
		s.log.Info("event hubs partition released", "hub", s.hub, "partition", id, "owner", owner, "consumer_group", s.cfg.ConsumerGroup, "reason", reason)
	}()

	held := false // whether this worker holds the partition's batch slot and a memory token
	release := func() {
		if held {
			<-s.memory
			<-p.slot
			held = false
		}
	}
	for {
		if !held {
			// The previous batch of this partition, perhaps from an earlier
			// session, must be acknowledged before the next one is read.
			select {
			case p.slot <- struct{}{}:
			case <-ctx.Done():
				return
			}
			// Then a token of the source-wide budget of batches in memory.
			select {
			case s.memory <- struct{}{}:
				held = true
			case <-ctx.Done():
				<-p.slot
				return
			}
		}
		select {
		case <-s.stopping:
			// Closing: no new batches, but the partition stays ours until
			// the processor stops, so that late acks still checkpoint.
			release()
			<-ctx.Done()
			return
		case <-sess.rewind:
			// Checked before reading on: a failed batch must be read again.
			release()
			reason = "a batch was not delivered; reading again from the checkpoint"
			return
		default:
		}
		events, err := s.receive(ctx, pc)
		if err != nil {
			release()
			if ctx.Err() != nil {
				return
			}
			var ehErr *azeventhubs.Error
			if errors.As(err, &ehErr) && ehErr.Code == azeventhubs.ErrorCodeOwnershipLost {
				reason = "ownership moved to another instance"
				s.forgetFailure(p) // reading it is another instance's business now
			} else if processorStopping(runDone) {
				reason = "processor stopped"
			} else {
				// The processor claims the partition again on its next round.
				reason = "receive failed"
				s.partitionFailed(p, err.Error())
			}
			return
		}
		if len(events) == 0 {
			continue
		}
		s.partitionReadable(p)
		// The slot now belongs to the batch: its Ack releases it.
		held = false
		s.inflight.add()
		b := s.newBatch(p, sess, events)
		select {
		case s.batches <- b.Batch:
		case <-ctx.Done():
			b.discard()
			return
		case <-s.stopping:
			b.discard()
			<-ctx.Done()
			return
		}
	}
}

// receive waits up to ReceiveWait for up to ReceiveBatchSize events.
func (s *Source) receive(ctx context.Context, pc *azeventhubs.ProcessorPartitionClient) ([]*azeventhubs.ReceivedEventData, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.ReceiveWait)
	defer cancel()
	events, err := pc.ReceiveEvents(rctx, s.cfg.ReceiveBatchSize, nil)
	if err != nil && len(events) == 0 && rctx.Err() != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, nil // nothing arrived in time
	}
	return events, err
}

// pendingBatch is a batch with a way to drop it when it could not be handed out.
type pendingBatch struct {
	stream.Batch
	discard func()
}

func (s *Source) newBatch(p *partition, sess *session, events []*azeventhubs.ReceivedEventData) pendingBatch {
	bodies := make([]stream.Body, len(events))
	for i, e := range events {
		seq := e.SequenceNumber
		bodies[i] = stream.Body{Data: e.Body, Pos: stream.Position{
			Kind: Kind, Topic: s.hub, Partition: p.id, Offset: e.Offset, Sequence: &seq,
		}}
	}
	last := events[len(events)-1]
	p.onReceived(len(events), last.SequenceNumber)
	var once atomic.Bool
	// release frees the partition for its next batch, only after this
	// batch's checkpoint is written so that checkpoints never go back.
	release := func() {
		<-s.memory
		<-p.slot
		s.inflight.done()
	}
	discard := func() {
		if once.CompareAndSwap(false, true) {
			release()
		}
	}
	return pendingBatch{discard: discard, Batch: stream.Batch{Bodies: bodies, Ack: func(ctx context.Context, err error) error {
		if !once.CompareAndSwap(false, true) {
			return errors.New("eventhubs: batch acknowledged twice")
		}
		defer release()
		if err != nil {
			// Not delivered: read the partition again from its checkpoint.
			sess.once.Do(func() { close(sess.rewind) })
			return nil
		}
		p.onProcessed(last.SequenceNumber)
		if sess.ended.Load() {
			// Another owner may be ahead already; moving the checkpoint back
			// would only cause duplicates, and the new owner re-reads from the
			// last checkpoint anyway.
			return nil
		}
		if cerr := sess.client.UpdateCheckpoint(ctx, last, nil); cerr != nil {
			// The documents are delivered; only the checkpoint is behind. A
			// later batch's checkpoint covers this one, and until then a
			// restart reads these events again (at least once). Report it
			// through readiness and the log, not as a failed delivery.
			cerr = secret.RedactError(compactStorageError(cerr, s.cfg.CheckpointStore.auth()))
			s.setReady(checkpointError{fmt.Errorf("eventhubs checkpoint %s partition %s sequence %d: %w", s.hub, p.id, last.SequenceNumber, cerr)})
			level := slog.LevelDebug
			if s.checkpointWarn.allow(time.Now()) {
				level = slog.LevelWarn
			}
			s.log.Log(ctx, level, "event hubs checkpoint not written; a later one will cover it", "hub", s.hub, "partition", p.id, "sequence_number", last.SequenceNumber, "error", cerr)
			return nil
		}
		p.onCheckpointed(last.SequenceNumber, time.Now())
		s.clearCheckpointError()
		return nil
	}}}
}

// rateLimit allows one event a minute.
type rateLimit struct {
	mu   sync.Mutex
	last time.Time
}

func (r *rateLimit) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < time.Minute {
		return false
	}
	r.last = now
	return true
}

// counter counts batches out; unlike a WaitGroup it may be waited on while
// workers still add to it.
type counter struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{}
}

func (c *counter) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *counter) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n == 0 {
		for _, w := range c.waiters {
			close(w)
		}
		c.waiters = nil
	}
}

// zero returns a channel closed once no batch is out.
func (c *counter) zero() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if c.n == 0 {
		close(ch)
	} else {
		c.waiters = append(c.waiters, ch)
	}
	return ch
}

// processorStopping reports whether the processor stops within a moment.
func processorStopping(runDone <-chan struct{}) bool {
	select {
	case <-runDone:
		return true
	case <-time.After(time.Second):
		return false
	}
}
