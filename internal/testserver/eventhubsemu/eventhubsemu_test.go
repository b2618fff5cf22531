package eventhubsemu_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"

	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

func TestSDKAgainstEmulator(t *testing.T) {
	emu := eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cc, err := azeventhubs.NewConsumerClientFromConnectionString(emu.ConnectionString(), "audit", azeventhubs.DefaultConsumerGroup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close(ctx)

	props, err := cc.GetEventHubProperties(ctx, nil)
	if err != nil {
		t.Fatalf("hub properties: %v", err)
	}
	if props.Name != "audit" || fmt.Sprint(props.PartitionIDs) != "[0 1 2]" {
		t.Fatalf("hub properties = %+v", props)
	}

	got, err := emu.Publish("1", []byte("a"), []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	if got[1].SequenceNumber != 1 || got[1].Offset != "1000" {
		t.Fatalf("published = %+v", got)
	}

	// Producer batch: format 0x80013700, all into partition 1.
	pc, err := azeventhubs.NewProducerClientFromConnectionString(emu.ConnectionString(), "audit", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	batch, err := pc.NewEventDataBatch(ctx, &azeventhubs.EventDataBatchOptions{PartitionID: to.Ptr("1")})
	if err != nil {
		t.Fatalf("new batch: %v", err)
	}
	for _, b := range []string{"c", "d"} {
		if err := batch.AddEventData(&azeventhubs.EventData{Body: []byte(b)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := pc.SendEventDataBatch(ctx, batch, nil); err != nil {
		t.Fatalf("send batch: %v", err)
	}

	pp, err := cc.GetPartitionProperties(ctx, "1", nil)
	if err != nil {
		t.Fatalf("partition properties: %v", err)
	}
	if pp.LastEnqueuedSequenceNumber != 3 || pp.LastEnqueuedOffset != "3000" || pp.IsEmpty {
		t.Fatalf("partition properties = %+v", pp)
	}

	// Start after offset 1000 (sequence 1): c and d.
	part, err := cc.NewPartitionClient("1", &azeventhubs.PartitionClientOptions{
		StartPosition: azeventhubs.StartPosition{Offset: to.Ptr("1000")},
		OwnerLevel:    to.Ptr[int64](0),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close(ctx)
	events, err := part.ReceiveEvents(ctx, 2, nil)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(events) != 2 || string(events[0].Body) != "c" || events[0].SequenceNumber != 2 || events[1].Offset != "3000" {
		t.Fatalf("events = %+v", events)
	}

	// A second owner with the same epoch steals the partition.
	thief, err := cc.NewPartitionClient("1", &azeventhubs.PartitionClientOptions{
		StartPosition: azeventhubs.StartPosition{Earliest: to.Ptr(true)},
		OwnerLevel:    to.Ptr[int64](0),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close(ctx)
	first, err := thief.ReceiveEvents(ctx, 1, nil)
	if err != nil || len(first) != 1 || string(first[0].Body) != "a" {
		t.Fatalf("thief receive = %v, %v", first, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	_, err = part.ReceiveEvents(rctx, 1, nil)
	var ehErr *azeventhubs.Error
	if !errors.As(err, &ehErr) || ehErr.Code != azeventhubs.ErrorCodeOwnershipLost {
		t.Fatalf("old owner error = %v, want ownership lost", err)
	}

	// Connections dropped: the client reconnects and continues after "a".
	if err := emu.DropConnections(); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Publish("1", []byte("e")); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for len(bodies) < 4 {
		evs, err := thief.ReceiveEvents(ctx, 4-len(bodies), nil)
		if err != nil {
			t.Fatalf("receive after drop: %v", err)
		}
		for _, e := range evs {
			bodies = append(bodies, string(e.Body))
		}
	}
	if fmt.Sprint(bodies) != "[b c d e]" {
		t.Fatalf("after drop got %v", bodies)
	}
}

func TestUnknownPartitionRefused(t *testing.T) {
	emu := eventhubsemu.Start(t, eventhubsemu.Options{Partitions: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc, err := azeventhubs.NewConsumerClientFromConnectionString(emu.ConnectionString(), emu.Hub, azeventhubs.DefaultConsumerGroup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close(ctx)
	part, err := cc.NewPartitionClient("7", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close(ctx)
	if _, err := part.ReceiveEvents(ctx, 1, nil); err == nil {
		t.Fatal("receive from an unknown partition succeeded")
	}
}

// TestUnknownConsumerGroupRefused: as in Event Hubs, a receiver on a
// consumer group the hub does not have is refused with amqp:not-found
// naming the group; known groups match without regard to case.
func TestUnknownConsumerGroupRefused(t *testing.T) {
	emu := eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 1, ConsumerGroups: []string{"sspr-exporter"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := emu.Publish("0", []byte("a")); err != nil {
		t.Fatal(err)
	}
	receive := func(group string) error {
		cc, err := azeventhubs.NewConsumerClientFromConnectionString(emu.ConnectionString(), emu.Hub, group, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close(ctx)
		part, err := cc.NewPartitionClient("0", &azeventhubs.PartitionClientOptions{StartPosition: azeventhubs.StartPosition{Earliest: to.Ptr(true)}})
		if err != nil {
			t.Fatal(err)
		}
		defer part.Close(ctx)
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		_, err = part.ReceiveEvents(rctx, 1, nil)
		return err
	}
	for _, g := range []string{azeventhubs.DefaultConsumerGroup, "sspr-exporter", "SSPR-Exporter"} {
		if err := receive(g); err != nil {
			t.Errorf("consumer group %s: %v", g, err)
		}
	}
	err := receive("nope")
	if err == nil || !strings.Contains(err.Error(), "amqp:not-found") || !strings.Contains(err.Error(), "/audit/consumergroups/nope'") {
		t.Fatalf("consumer group nope: %v, want an amqp:not-found error naming the group", err)
	}
}

// TestWrongKeyRefused: with a key set, tokens signed with another key are
// refused with status 401.
func TestWrongKeyRefused(t *testing.T) {
	emu := eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 1, SASKey: "cmlnaHQta2V5"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	props := func(cs string) error {
		cc, err := azeventhubs.NewConsumerClientFromConnectionString(cs, emu.Hub, azeventhubs.DefaultConsumerGroup, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close(ctx)
		_, err = cc.GetEventHubProperties(ctx, nil)
		return err
	}
	if err := props(emu.ConnectionString()); err != nil {
		t.Fatalf("the right key: %v", err)
	}
	if err := props(emu.ConnectionStringWithKey("d3Jvbmcta2V5")); err == nil || !strings.Contains(err.Error(), "status code 401") {
		t.Fatalf("a wrong key: %v, want status 401", err)
	}
}
