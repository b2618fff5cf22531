package eventhubs

import "testing"

// TestParseSDKLog: the SDK's messages (azeventhubs v2.0.2, as logged
// against the emulator) that say a partition link opened or failed, and
// those of normal operation, which are not failures.
func TestParseSDKLog(t *testing.T) {
	tests := []struct {
		msg  string
		want sdkReport
		ok   bool
	}{
		{"(c:1,l:qdTLw,p:0): Succesfully created link for partition ID '0'", sdkReport{partition: "0", ok: true}, true},
		{"(c:0,l:,p:3): Failed to negotiate claim for partition ID '3': dial tcp 127.0.0.1:35405: connect: connection refused",
			sdkReport{partition: "3", cause: "dial tcp 127.0.0.1:35405: connect: connection refused"}, true},
		{"(c:1,l:,p:0): Failed to create link for partition ID '0': *Error{Condition: amqp:not-found, Description: The messaging entity 'sb://h/audit/consumergroups/x' could not be found., Info: map[]}",
			sdkReport{partition: "0", cause: "*Error{Condition: amqp:not-found, Description: The messaging entity 'sb://h/audit/consumergroups/x' could not be found., Info: map[]}"}, true},
		{"failed to create partition client for partition '12': dial tcp: lookup x.invalid: no such host",
			sdkReport{partition: "12", cause: "dial tcp: lookup x.invalid: no such host"}, true},
		{"(c:1,l:qdTLw,p:0) Retry attempt 0 returned retryable error: dial tcp 127.0.0.1:1: connect: connection refused",
			sdkReport{partition: "0", cause: "dial tcp 127.0.0.1:1: connect: connection refused"}, true},
		{"(c:1,l:qdTLw,p:1) Failure recovering connection for link: dial tcp 127.0.0.1:1: connect: connection refused",
			sdkReport{partition: "1", cause: "dial tcp 127.0.0.1:1: connect: connection refused"}, true},
		// Management links have no partition; waits and shutdowns end
		// contexts; a stolen link is a partition changing owner.
		{"(c:1,l:ZzwDm,p:) Retry attempt 0 returned retryable error: (connlost): EOF", sdkReport{}, false},
		{"() Retry attempt 0 returned retryable error: dial tcp 127.0.0.1:1: connect: connection refused", sdkReport{}, false},
		{"(c:1,l:qdTLw,p:0) Retry attempt 0 was cancelled, stopping: context deadline exceeded", sdkReport{}, false},
		{"(c:2,l:,p:0): Failed to negotiate claim for partition ID '0': context canceled", sdkReport{}, false},
		{"(c:1,l:qdTLw,p:0) Retry attempt 0 returned non-retryable error: link detached, reason: *Error{Condition: amqp:link:stolen, Description: New receiver with higher epoch}", sdkReport{}, false},
		{"failed to create partition client for partition '0': client has been closed by user", sdkReport{}, false},
		{"12 Events received, moving sequence to 99", sdkReport{}, false},
	}
	for _, tt := range tests {
		got, ok := parseSDKLog(tt.msg)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseSDKLog(%q) = %+v, %v; want %+v, %v", tt.msg, got, ok, tt.want, tt.ok)
		}
	}
}
