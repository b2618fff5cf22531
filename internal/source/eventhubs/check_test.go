package eventhubs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	return port
}

func emulatorConnectionString(hostPort string) string {
	return "Endpoint=sb://" + hostPort + ";SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=ZW11bGF0b3I=;UseDevelopmentEmulator=true"
}

// checkConfig reads hub from an Event Hubs connection string and stores
// checkpoints with a storage connection string, in container "checkpoints".
func checkConfig(hubCS, storageCS string) Config {
	cfg := DefaultConfig()
	cfg.ConnectionString = secret.New(hubCS)
	cfg.EventHub = "audit"
	cfg.CheckpointStore.ConnectionString = secret.New(storageCS)
	cfg.CheckpointStore.Container = "checkpoints"
	return cfg
}

func createContainer(t *testing.T, az *azurite.Server, name string) {
	t.Helper()
	cc, err := container.NewClientFromConnectionString(az.ConnectionString(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// runCheck runs CheckHub and CheckStore, each with a deadline it must not
// need: a check fails on the cause it meets, not on running out of time.
func runCheck(t *testing.T, cfg Config) (hub, store error) {
	_, hub, store = runCheckNote(t, cfg)
	return hub, store
}

func runCheckNote(t *testing.T, cfg Config) (note string, hub, store error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub = CheckHub(ctx, cfg)
	if ctx.Err() != nil {
		t.Errorf("the hub check used up its 30s deadline: %v", hub)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	note, store = CheckStore(sctx, cfg)
	if sctx.Err() != nil {
		t.Errorf("the store check used up its 30s deadline: %v", store)
	}
	return note, hub, store
}

// wantOneLine fails unless err is one line holding every part.
func wantOneLine(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one with %q", what, parts)
		return
	}
	msg := err.Error()
	t.Logf("%s: %s", what, msg)
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("%s: %d lines, want one:\n%s", what, strings.Count(msg, "\n")+1, msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s: %q does not say %q", what, msg, p)
		}
	}
}

// TestCheckUnreachableHub: a hub that refuses connections fails at once,
// naming the endpoint and "connection refused"; the healthy storage
// account passes.
func TestCheckUnreachableHub(t *testing.T) {
	az := azurite.Start(t)
	createContainer(t, az, "checkpoints")
	addr := "127.0.0.1:" + closedPort(t)
	hub, store := runCheck(t, checkConfig(emulatorConnectionString(addr), az.ConnectionString()))
	wantOneLine(t, "hub", hub, "amqp://"+addr, "connection refused")
	if store != nil {
		t.Errorf("store: %v, want nil: the storage account is healthy", store)
	}
}

// TestCheckHubDNS: a namespace that does not resolve says DNS.
func TestCheckHubDNS(t *testing.T) {
	az := azurite.Start(t)
	createContainer(t, az, "checkpoints")
	cs := "Endpoint=sb://sspr-exporter-test.invalid/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0"
	hub, _ := runCheck(t, checkConfig(cs, az.ConnectionString()))
	wantOneLine(t, "hub", hub, "amqps://sspr-exporter-test.invalid:5671", "DNS")
}

// TestCheckHubTLS: a server whose certificate is not trusted says TLS.
func TestCheckHubTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	az := azurite.Start(t)
	createContainer(t, az, "checkpoints")
	host := strings.TrimPrefix(srv.URL, "https://")
	cs := "Endpoint=sb://" + host + "/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0"
	hub, _ := runCheck(t, checkConfig(cs, az.ConnectionString()))
	wantOneLine(t, "hub", hub, "amqps://"+host, "TLS", "certificate")
}

// TestCheckHubReachable: the emulator passes; a wrong hub name, consumer
// group or key fails with what to fix, in one line.
func TestCheckHubReachable(t *testing.T) {
	emu := eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 2, ConsumerGroups: []string{"sspr-exporter"}, SASKey: "cmlnaHQta2V5"})
	az := azurite.Start(t)
	createContainer(t, az, "checkpoints")
	cfg := checkConfig(emu.ConnectionString(), az.ConnectionString())
	cfg.ConsumerGroup = "sspr-exporter"
	if hub, store := runCheck(t, cfg); hub != nil || store != nil {
		t.Fatalf("healthy hub and store: %v; %v", hub, store)
	}

	wrongHub := cfg
	wrongHub.EventHub = "audti"
	hub, _ := runCheck(t, wrongHub)
	wantOneLine(t, "wrong hub", hub, `"audti"`, "not found")

	wrongGroup := cfg
	wrongGroup.ConsumerGroup = "sspr-exporte"
	hub, _ = runCheck(t, wrongGroup)
	wantOneLine(t, "wrong consumer group", hub, `consumer group "sspr-exporte"`, "not")

	wrongKey := cfg
	wrongKey.ConnectionString = secret.New(emu.ConnectionStringWithKey("d3Jvbmcta2V5"))
	hub, _ = runCheck(t, wrongKey)
	wantOneLine(t, "wrong key", hub, "401", "Listen")
	if hub != nil && strings.Contains(hub.Error(), "d3Jvbmcta2V5") {
		t.Errorf("the error shows the key: %v", hub)
	}
}

// TestCheckUnreachableStorage: a storage endpoint that refuses connections
// fails at once with the container URL and "connection refused".
func TestCheckUnreachableStorage(t *testing.T) {
	emu := eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 1})
	blob := "http://127.0.0.1:" + closedPort(t) + "/" + azurite.Account
	storage := "DefaultEndpointsProtocol=http;AccountName=" + azurite.Account + ";AccountKey=" + azurite.Key + ";BlobEndpoint=" + blob + ";"
	hub, store := runCheck(t, checkConfig(emu.ConnectionString(), storage))
	if hub != nil {
		t.Errorf("hub: %v, want nil", hub)
	}
	wantOneLine(t, "store", store, blob+"/checkpoints", "connection refused")
}

// TestCheckStorageWrongKey: a wrong account key is one line with the
// status, the error code and what is wrong, not the service's XML.
func TestCheckStorageWrongKey(t *testing.T) {
	emu := eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 1})
	az := azurite.Start(t)
	createContainer(t, az, "checkpoints")
	wrongKey := base64.StdEncoding.EncodeToString([]byte("not the account key"))
	storage := strings.Replace(az.ConnectionString(), azurite.Key, wrongKey, 1)
	_, store := runCheck(t, checkConfig(emu.ConnectionString(), storage))
	// Azurite answers a bad signature with AuthorizationFailure, Azure with
	// AuthenticationFailed; both say the key is wrong.
	wantOneLine(t, "store", store, az.BlobURL()+"/checkpoints", "403", "AuthorizationFailure", "account key is wrong")
	if store != nil && (strings.Contains(store.Error(), "<?xml") || strings.Contains(store.Error(), wrongKey)) {
		t.Errorf("store error holds XML or the key: %v", store)
	}
}

// TestCheckMissingContainer: a container that run would create is not a
// failure; the note says so.
func TestCheckMissingContainer(t *testing.T) {
	emu := eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 1})
	az := azurite.Start(t)
	note, hub, store := runCheckNote(t, checkConfig(emu.ConnectionString(), az.ConnectionString()))
	if hub != nil || store != nil {
		t.Fatalf("missing container: hub %v, store %v; want both nil", hub, store)
	}
	if !strings.Contains(note, `container "checkpoints" does not exist yet; run creates it`) {
		t.Errorf("note %q does not say that run creates the container", note)
	}
}

// storageError is the error azblob returns for a response with this
// status, x-ms-error-code and message.
func storageError(t *testing.T, status int, code, message string) error {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "https://acct.blob.core.windows.net/checkpoints?restype=container&sig=c2VjcmV0", nil)
	body := `<?xml version="1.0" encoding="utf-8"?><Error><Code>` + code + `</Code><Message>` + message + "\nRequestId:1\nTime:2026-01-01T00:00:00Z</Message></Error>"
	resp := &http.Response{StatusCode: status, Header: http.Header{"X-Ms-Error-Code": {code}}, Request: req,
		Body: io.NopCloser(strings.NewReader(body))}
	return runtime.NewResponseError(resp)
}

// TestStorageErrorLine: each storage refusal is one line with the status,
// the code and the fix for the way the store authenticates.
func TestStorageErrorLine(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		code    string
		message string
		auth    storageAuth
		want    string
	}{
		{"wrong key", 403, "AuthenticationFailed", "Server failed to authenticate the request.", storageSharedKey, "403 Forbidden AuthenticationFailed: the account key is wrong"},
		{"expired SAS", 403, "AuthenticationFailed", "Signature not valid in the specified time frame", storageSAS, "403 Forbidden AuthenticationFailed: the SAS is wrong or expired"},
		{"missing role", 403, "AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this permission.", storageEntra, "403 Forbidden AuthorizationPermissionMismatch: the identity needs the Storage Blob Data Contributor role"},
		{"SAS without permission", 403, "AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this permission.", storageSAS, "the SAS lacks a permission"},
		{"other", 409, "ContainerBeingDeleted", "The specified container is being deleted.", storageSharedKey, "409 Conflict ContainerBeingDeleted: The specified container is being deleted."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storageError(t, tt.status, tt.code, tt.message)
			got := storageErrorLine(err, tt.auth)
			if !strings.Contains(got, tt.want) || strings.ContainsAny(got, "\n<") {
				t.Errorf("got %q, want one line with %q", got, tt.want)
			}
			// In run's errors the request comes first, without its SAS.
			wrapped := compactStorageError(fmt.Errorf("processor: %w", err), tt.auth)
			if msg := wrapped.Error(); !strings.HasPrefix(msg, "processor: GET https://acct.blob.core.windows.net/checkpoints: "+got) || strings.Contains(msg, "c2VjcmV0") {
				t.Errorf("compacted: %q", msg)
			}
			var rerr *azcore.ResponseError
			if !errors.As(wrapped, &rerr) {
				t.Error("the compacted error lost the response error")
			}
		})
	}
}
