package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	s, err := b.JS.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("rebuild: stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("rebuild: stream %s: %w", name, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return 0, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, fmt.Errorf("rebuild: read %s: %w", name, err)
	}
	n := 0
	for {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			continue
		}
		if err != nil {
			return n, fmt.Errorf("rebuild: read %s: %w", name, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return n, err
		}
		e, err := event.FromMsg(m.Subject(), m.Headers(), m.Data())
		if err == nil {
			err = b.Catalog.Decode(e)
		}
		if err != nil {
			log.Warn("rebuild: skipping an event that does not decode", "stream", name, "seq", meta.Sequence.Stream, "error", err)
		} else {
			e.Stream, e.Sequence = name, meta.Sequence.Stream
			f(e)
			n++
		}
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			return n, nil
		}
	}
}
