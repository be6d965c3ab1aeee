package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/event"
)

// ReadAll hands every message of a stream (those on subjects, if any are
// given), from the first to the last present when it is called, to fn in
// order, decoded: a projection rebuilding its state from a log. A message
// that is not a valid event comes with its decoding error (and the event,
// when its envelope could be read) for fn to skip or refuse; an error from
// fn stops the read and is returned.
func (b *Bus) ReadAll(ctx context.Context, stream string, subjects []string, fn func(e *event.Event, err error) error) error {
	s, err := b.JS.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	for {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if len(subjects) > 0 {
				return nil // nothing (more) on these subjects
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		e, _, derr := b.Decode(m)
		if e != nil {
			e.Stream, e.Sequence = meta.Stream, meta.Sequence.Stream
		}
		if derr != nil {
			derr = fmt.Errorf("%s seq %d: %w", stream, meta.Sequence.Stream, derr)
		}
		if err := fn(e, derr); err != nil {
			return err
		}
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			return nil
		}
	}
}
