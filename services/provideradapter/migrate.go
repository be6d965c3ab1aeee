package provideradapter

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/streams"
)

// fallbackStart is where the fallback durable starts when it is created on
// a log that an older adapter consumed with one durable for both leg
// kinds: just after that durable's ack floor, so that no fallback leg is
// handled twice (those past the floor but acknowledged are recognised by
// their attempt claims) and none from before is replayed. 0: no such
// history, start at the beginning.
func (a *adapter) fallbackStart(ctx context.Context) (uint64, error) {
	_, err := a.bus.JS.Consumer(ctx, streams.Events, durableFallback)
	if err == nil || !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, ignoreNotFound(err)
	}
	old, err := a.bus.JS.Consumer(ctx, streams.Events, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("provider-adapter: consumer %s: %w", durable, err)
	}
	info := old.CachedInfo()
	if !slices.Contains(info.Config.FilterSubjects, "events.otp_dlt_fallback") && info.Config.FilterSubject != "events.otp_dlt_fallback" {
		return 0, nil
	}
	return info.AckFloor.Stream + 1, nil
}

func ignoreNotFound(err error) error {
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return fmt.Errorf("provider-adapter: consumer %s: %w", durableFallback, err)
}
