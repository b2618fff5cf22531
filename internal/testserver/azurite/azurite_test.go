package azurite_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
)

func TestStopStartKeepsData(t *testing.T) {
	srv := azurite.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client, err := azblob.NewClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateContainer(ctx, "checkpoints", nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	if _, err := client.UploadBuffer(ctx, "checkpoints", "b", []byte("hello"), nil); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	_, err = client.DownloadStream(short, "checkpoints", "b", nil)
	cancelShort()
	if err == nil {
		t.Fatal("download while stopped succeeded")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := client.DownloadStream(ctx, "checkpoints", "b", nil)
	if err != nil {
		t.Fatalf("download after restart: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if !strings.EqualFold(string(data), "hello") {
		t.Fatalf("blob = %q", data)
	}
}
