package eventhubs

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
)

// Check tries the configured endpoints without consuming anything: it
// reads the event hub's properties and the checkpoint container's. Each
// error says what to fix.
func Check(ctx context.Context, cfg Config) (hub, store error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		err := fmt.Errorf("config: %w", errors.Join(errs...))
		return err, err
	}
	sdkLog.install()
	s := &Source{cfg: cfg}
	var cred azcore.TokenCredential
	if cfg.ConnectionString.IsZero() || cfg.CheckpointStore.ConnectionString.IsZero() {
		var err error
		if cred, err = newCredential(cfg); err != nil {
			return err, err
		}
	}
	if err := s.newConsumer(cred); err != nil {
		hub = err
	} else {
		defer s.consumer.Close(context.WithoutCancel(ctx))
		props, err := s.consumer.GetEventHubProperties(ctx, nil)
		if err != nil {
			hub = fmt.Errorf("event hub %s/%s: %w (check the namespace, the hub name and that the credential has the Azure Event Hubs Data Receiver role or a Listen policy)", s.namespace, s.hub, redact(err))
		} else if len(props.PartitionIDs) == 0 {
			hub = fmt.Errorf("event hub %s/%s has no partitions", s.namespace, s.hub)
		}
	}
	if err := s.newStore(cred); err != nil {
		store = err
	} else if _, err := s.container.GetProperties(ctx, nil); err != nil {
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			store = fmt.Errorf("checkpoint container %q does not exist: it is created at start when the credential may (Storage Blob Data Contributor), or create it by hand", cfg.CheckpointStore.Container)
		} else {
			store = fmt.Errorf("checkpoint container %q: %w (check the account and that the credential has the Storage Blob Data Contributor role)", cfg.CheckpointStore.Container, redact(err))
		}
	}
	return hub, store
}
