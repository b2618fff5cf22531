package eventhubs

import (
	"regexp"
	"strings"
	"sync"

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
)

// The SDK retries link and connection errors by itself and tells only its
// log about them: a ReceiveEvents call whose wait ends while the SDK sleeps
// between two attempts returns context.DeadlineExceeded, exactly as on an
// idle partition, and a partition client the processor cannot open (the
// consumer group does not exist, the hub is unreachable) is never handed
// out at all. The source therefore reads the SDK's log reports about
// partition links (azcore log classes azeventhubs.EventConn and
// EventConsumer) to tell a partition that fails from one that idles.

// sdkReport is what one SDK log message says about a partition link.
type sdkReport struct {
	partition string
	ok        bool   // a link was opened
	cause     string // why a link failed, when !ok
}

var (
	// "(c:1,l:abcde,p:0): Succesfully created link for partition ID '0'"
	// (the SDK's spelling, with one s).
	sdkLinkOpened = regexp.MustCompile(`Succes+fully created link for partition ID '([^']+)'`)
	// "(c:0,l:,p:0): Failed to negotiate claim for partition ID '0': <err>",
	// likewise for the AMQP session and the link itself.
	sdkLinkFailed = regexp.MustCompile(`Failed to (?:negotiate claim|create AMQP session|create link) for partition ID '([^']+)': (.+)`)
	// "failed to create partition client for partition '0': <err>": the
	// processor could not open the partition and will try next round.
	sdkClientFailed = regexp.MustCompile(`^failed to create partition client for partition '([^']+)': (.+)`)
	// "(c:1,l:abcde,p:0) Retry attempt 0 returned retryable error: <err>"
	// and "... Failure recovering connection for link: <err>".
	sdkRetryFailed = regexp.MustCompile(`^\(c:\d+,l:[^,]*,p:([^)]+)\) (?:Retry attempt \d+ returned (?:non-)?retryable error|Failure recovering connection for link): (.+)`)
)

// parseSDKLog returns what msg says about a partition link, if anything.
// Errors that are part of normal operation are not failures: a context
// ended (an idle wait, a shutdown), a client closed on purpose, and a link
// stolen by another instance (a partition changing owner).
func parseSDKLog(msg string) (sdkReport, bool) {
	if m := sdkLinkOpened.FindStringSubmatch(msg); m != nil {
		return sdkReport{partition: m[1], ok: true}, true
	}
	for _, re := range []*regexp.Regexp{sdkLinkFailed, sdkClientFailed, sdkRetryFailed} {
		m := re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		cause := m[2]
		for _, normal := range []string{"context canceled", "closed by user", "amqp:link:stolen"} {
			if strings.Contains(cause, normal) {
				return sdkReport{}, false
			}
		}
		return sdkReport{partition: m[1], cause: cause}, true
	}
	return sdkReport{}, false
}

// sdkLogRouter hands the SDK's reports to the open sources. The SDK's log
// is process-wide and its messages do not say which client wrote them, so
// every open source hears every report about the partition ids it knows.
type sdkLogRouter struct {
	once    sync.Once
	mu      sync.RWMutex
	sources map[*Source]struct{}
}

var sdkLog = &sdkLogRouter{sources: map[*Source]struct{}{}}

// install sets the SDK's log listener, once, before this package creates
// its first client: azcore reads the listener without a lock.
func (r *sdkLogRouter) install() {
	r.once.Do(func() {
		azlog.SetEvents(azeventhubs.EventConn, azeventhubs.EventConsumer)
		azlog.SetListener(r.route)
	})
}

func (r *sdkLogRouter) add(s *Source) {
	r.install()
	r.mu.Lock()
	r.sources[s] = struct{}{}
	r.mu.Unlock()
}

func (r *sdkLogRouter) remove(s *Source) {
	r.mu.Lock()
	delete(r.sources, s)
	r.mu.Unlock()
}

func (r *sdkLogRouter) route(_ azlog.Event, msg string) {
	rep, ok := parseSDKLog(msg)
	if !ok {
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for s := range r.sources {
		s.onSDKReport(rep)
	}
}
