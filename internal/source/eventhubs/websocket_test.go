package eventhubs

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/coder/websocket"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

func TestWebSocketDialerCarriesBytes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"amqp"}})
		if err != nil {
			return
		}
		if c.Subprotocol() != "amqp" {
			c.Close(websocket.StatusPolicyViolation, "want amqp")
			return
		}
		conn := websocket.NetConn(r.Context(), c, websocket.MessageBinary)
		_, _ = io.Copy(conn, conn) // echo
	}))
	defer srv.Close()

	dial, err := webSocketDialer(Config{WebSockets: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := dial(ctx, azeventhubs.WebSocketConnParams{Host: "ws" + strings.TrimPrefix(srv.URL, "http") + "/$servicebus/websocket"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	cancel() // the connection must outlive the dial context
	if _, err := conn.Write([]byte("AMQP\x00\x01\x00\x00")); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "AMQP\x00\x01\x00\x00" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

func TestWebSocketDialerUsesProxy(t *testing.T) {
	var hits atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer proxy.Close()
	dial, err := webSocketDialer(Config{WebSockets: true, ProxyURL: secret.New(proxy.URL)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The target is never reached directly: only the proxy answers.
	if _, err := dial(ctx, azeventhubs.WebSocketConnParams{Host: "ws://eventhubs.invalid/$servicebus/websocket"}); err == nil {
		t.Fatal("dial through a refusing proxy succeeded")
	}
	if hits.Load() == 0 {
		t.Fatal("the proxy was not used")
	}
}
