package eventhubs

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
)

// A partition fails while its links cannot be opened or used: the SDK
// (see sdklog.go) or a receive call reports an error, and nothing was
// received or opened since. Ready reports the failure once it lasted
// unhealthy_after; the warning is logged at once, then once a minute.

// failureQuiet is how long a failure counts after its last report. The SDK
// reports a failing link at every receive call, but a partition it cannot
// open only at every load-balancing round, after its own retries (up to
// about a minute); a partition that stops being reported about is no
// longer this instance's to read.
func (s *Source) failureQuiet() time.Duration {
	return 2*s.cfg.UpdateInterval + time.Minute
}

// onSDKReport records what the SDK's log said about a partition link.
func (s *Source) onSDKReport(rep sdkReport) {
	p := s.parts.Lookup(rep.partition)
	if p == nil {
		return // a partition of another hub, or not yet known
	}
	if rep.ok {
		s.partitionReadable(p)
	} else {
		s.partitionFailed(p, rep.cause)
	}
}

// partitionFailed records that p cannot be read and why, and logs a
// warning when none was logged for p in the last minute.
func (s *Source) partitionFailed(p *partitioned.Partition[string], cause string) {
	if s.parts.Closing() {
		return // links close on purpose
	}
	cause = tidyCause(secret.Redact(cause))
	now := time.Now()
	since, warn := p.Fail(errors.New(cause), now, s.failureQuiet())
	if warn {
		s.log.Warn("event hubs partition cannot be read; retrying", "hub", s.hub, "partition", p.Key(),
			"consumer_group", s.cfg.ConsumerGroup, "failing_for", now.Sub(since).Round(time.Second), "error", s.explain(cause))
	}
}

// partitionReadable ends p's failure, if any, and says so when its
// failure was logged.
func (s *Source) partitionReadable(p *partitioned.Partition[string]) {
	if since, warned := p.Heal(); !since.IsZero() && warned {
		s.log.Info("event hubs partition readable again", "hub", s.hub, "partition", p.Key(),
			"consumer_group", s.cfg.ConsumerGroup, "after", time.Since(since).Round(time.Second))
	}
}

// partitionsReady returns why the source is not ready because of failing
// partitions: those failing for unhealthy_after or longer.
func (s *Source) partitionsReady() error {
	now := time.Now()
	quiet := s.failureQuiet()
	var ids []string
	var cause string
	var longest time.Duration
	for _, p := range s.parts.Partitions() {
		since, err := p.Failure(now, quiet)
		if err == nil || now.Sub(since) < s.cfg.UnhealthyAfter {
			continue
		}
		ids = append(ids, p.Key())
		if d := now.Sub(since); d > longest || cause == "" {
			longest, cause = d, err.Error()
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.SortFunc(ids, comparePartitionIDs)
	what := "partition " + ids[0]
	if len(ids) > 1 {
		what = "partitions " + strings.Join(ids, ", ")
	}
	return fmt.Errorf("eventhubs %s/%s: %s cannot be read for %s (unhealthy_after %s): %s",
		s.namespace, s.hub, what, longest.Round(time.Second), s.cfg.UnhealthyAfter, s.explain(cause))
}

// explain puts what to fix in front of causes whose fix is known. The hub
// and its partition ids come from the hub itself, so a receiver refused as
// not found can only be missing its consumer group.
func (s *Source) explain(cause string) string {
	switch {
	case strings.Contains(cause, "amqp:not-found"):
		return fmt.Sprintf("consumer group %q does not exist in event hub %q: create it or correct input.eventhubs.consumer_group (%s)", s.cfg.ConsumerGroup, s.hub, cause)
	case strings.Contains(cause, "amqp:unauthorized-access"):
		return "access refused: the credential needs the Azure Event Hubs Data Receiver role or a Listen policy on the hub (" + cause + ")"
	}
	return cause
}

// amqpErrorText matches go-amqp's rendering of a remote error.
var amqpErrorText = regexp.MustCompile(`\*Error\{Condition: ([^,]+), Description: (.*?), Info: map\[[^\]]*\]\}`)

// tidyCause turns go-amqp's struct rendering into "condition: description".
func tidyCause(s string) string {
	return amqpErrorText.ReplaceAllString(s, "$1: $2")
}
