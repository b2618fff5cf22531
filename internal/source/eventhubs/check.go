package eventhubs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// The checks try each endpoint once: the SDKs' retries would hide a refused
// connection or a wrong key behind a timeout.

// consumerGroupWait is how long CheckHub waits for the consumer group's
// receiver to be refused; Event Hubs refuses a missing group at once.
const consumerGroupWait = 2 * time.Second

// CheckHub reads the event hub's properties and opens a receiver on one
// partition of the consumer group, without consuming anything. The error
// names the endpoint tried and the root cause, in one line.
func CheckHub(ctx context.Context, cfg Config) error {
	if errs := cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	sdkLog.install()
	s := &Source{cfg: cfg}
	var cred azcore.TokenCredential
	if cfg.ConnectionString.IsZero() {
		var err error
		if cred, err = newCredential(cfg); err != nil {
			return err
		}
	}
	if err := s.newConsumer(cred, azeventhubs.RetryOptions{MaxRetries: -1}); err != nil {
		return err
	}
	defer s.consumer.Close(context.WithoutCancel(ctx))
	where := fmt.Sprintf("event hub %q at %s", s.hub, s.hubEndpoint())
	props, err := s.consumer.GetEventHubProperties(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %s", where, hubErrorLine(err, cfg))
	}
	if len(props.PartitionIDs) == 0 {
		return fmt.Errorf("%s: the hub has no partitions", where)
	}
	if err := s.checkConsumerGroup(ctx, props.PartitionIDs[0]); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// checkConsumerGroup opens a receiver on a partition of the consumer
// group: Event Hubs refuses it as not found when the group does not exist.
// Without an owner level the receiver takes the partition from no running
// instance; Event Hubs refuses it instead, which shows the group exists.
func (s *Source) checkConsumerGroup(ctx context.Context, partition string) error {
	pc, err := s.consumer.NewPartitionClient(partition, &azeventhubs.PartitionClientOptions{
		StartPosition: azeventhubs.StartPosition{Latest: to.Ptr(true)},
		Prefetch:      -1,
	})
	if err != nil {
		return fmt.Errorf("consumer group %q: %w", s.cfg.ConsumerGroup, err)
	}
	defer pc.Close(context.WithoutCancel(ctx))
	rctx, cancel := context.WithTimeout(ctx, consumerGroupWait)
	defer cancel()
	_, err = pc.ReceiveEvents(rctx, 1, nil)
	switch {
	case err == nil, rctx.Err() != nil && ctx.Err() == nil:
		return nil // attached, or at least not refused
	case strings.Contains(err.Error(), "amqp:link:stolen"):
		return nil // an instance reads the partition in this group
	case strings.Contains(err.Error(), "amqp:not-found"):
		return fmt.Errorf("consumer group %q does not exist: create it or correct input.eventhubs.consumer_group (%s)",
			s.cfg.ConsumerGroup, tidyCause(oneLine(secret.RedactError(err).Error())))
	}
	return fmt.Errorf("consumer group %q: %s", s.cfg.ConsumerGroup, hubErrorLine(err, s.cfg))
}

// hubEndpoint is the address the SDK connects to, as a URL.
func (s *Source) hubEndpoint() string {
	withPort := func(host, port string) string {
		if _, _, err := net.SplitHostPort(host); err == nil {
			return host
		}
		return net.JoinHostPort(host, port)
	}
	if !s.cfg.ConnectionString.IsZero() {
		if props, err := azeventhubs.ParseConnectionString(s.cfg.ConnectionString.Reveal()); err == nil && props.Emulator {
			return "amqp://" + withPort(s.namespace, "5672")
		}
	}
	if s.cfg.WebSockets {
		return "wss://" + withPort(s.namespace, "443") + "/$servicebus/websocket"
	}
	return "amqps://" + withPort(s.namespace, "5671")
}

// CheckStore reads the checkpoint container's properties. A container that
// does not exist is no failure, since run creates it: note then says so
// and what creating it needs. The error names the container URL and the
// root cause, in one line.
func CheckStore(ctx context.Context, cfg Config) (note string, err error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return "", fmt.Errorf("config: %w", errors.Join(errs...))
	}
	sdkLog.install()
	s := &Source{cfg: cfg}
	cs := cfg.CheckpointStore
	var cred azcore.TokenCredential
	if cs.ConnectionString.IsZero() {
		if cred, err = newCredential(cfg); err != nil {
			return "", err
		}
	}
	once := &container.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
	if err := s.newStore(cred, once); err != nil {
		return "", err
	}
	where := "checkpoint container " + s.containerURL()
	_, err = s.container.GetProperties(ctx, nil)
	switch {
	case err == nil:
		return "", nil
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Sprintf("container %q does not exist yet; run creates it%s", cs.Container, createNeeds(cs.auth())), nil
	}
	return "", fmt.Errorf("%s: %s", where, storageErrorLine(err, cs.auth()))
}

// createNeeds says what creating the container needs beyond an account key.
func createNeeds(auth storageAuth) string {
	switch auth {
	case storageSAS:
		return " (the SAS needs the create permission)"
	case storageEntra:
		return " (the identity needs Storage Blob Data Contributor on the account)"
	}
	return ""
}

// containerURL is the container's URL without its query, which may hold a SAS.
func (s *Source) containerURL() string {
	u, err := url.Parse(s.container.URL())
	if err != nil {
		return s.cfg.CheckpointStore.Container
	}
	return withoutQuery(u)
}
