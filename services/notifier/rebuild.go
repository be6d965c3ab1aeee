package notifier

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// Rebuild folds INCIDENTS and then NOTIFICATIONS, as they are when it is
// called, into a fresh State. It reads only: nothing is posted or published.
func Rebuild(ctx context.Context, b *bus.Bus, log *slog.Logger) (*State, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := NewState()
	for _, name := range []string{streams.Incidents, streams.Notifications} {
		n, err := readAll(ctx, b, name, func(e *event.Event) { st.Apply(e) }, log)
		if err != nil {
			return nil, err
		}
		log.Debug("notifier state rebuilt from stream", "stream", name, "events", n)
	}
	return st, nil
}

// readAll feeds every event of a stream, up to its last sequence at the
// call, to f in order. Events that do not decode are skipped (the durable
// consumer dead-letters them).
func readAll(ctx context.Context, b *bus.Bus, name string, f func(*event.Event), log *slog.Logger) (int, error) {
	n := 0
	err := b.ReadAll(ctx, name, nil, func(e *event.Event, err error) error {
		if err != nil {
			log.Warn("rebuild: skipping an event that does not decode", "stream", name, "error", err)
			return nil
		}
		f(e)
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("rebuild: %w", err)
	}
	return n, nil
}
