package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/event"
)

// ReadAll hands every message of a stream (those on subjects, if any are
// given), from the first to the last present when it is called, to fn in
// order, decoded: a projection rebuilding its state from a log. A message
// that is not a valid event comes with its decoding error (and the event,
// when its envelope could be read) for fn to skip or refuse; an error from
// fn stops the read and is returned.
//
// It pulls in batches through the ordered consumer's iterator, which
// re-creates the consumer where it stopped when its server is lost, so a
// read survives the loss of a cluster node.
func (b *Bus) ReadAll(ctx context.Context, stream string, subjects []string, fn func(e *event.Event, err error) error) error {
	return b.Scan(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: subjects}, false, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		e, _, derr := b.Decode(m)
		if e != nil {
			e.Stream, e.Sequence = meta.Stream, meta.Sequence.Stream
		}
		if derr != nil {
			derr = fmt.Errorf("%s seq %d: %w", stream, meta.Sequence.Stream, derr)
		}
		return fn(e, derr)
	})
}

// Scan hands the raw messages of an ordered consumer of stream to fn, in
// order: up to the last message present when it is called or, with follow,
// until ctx ends. It is the one way Herald reads a stream (ReadAll, herald
// tail, dead letters).
func (b *Bus) Scan(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig, follow bool, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	s, err := Retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return b.JS.Stream(ctx, stream) })
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	last := s.CachedInfo().State.LastSeq
	if cfg.InactiveThreshold == 0 {
		// A reader that dies leaves its consumer behind this long at most.
		cfg.InactiveThreshold = 30 * time.Second
	}
	c, err := Retry(ctx, func(ctx context.Context) (jetstream.Consumer, error) { return s.OrderedConsumer(ctx, cfg) })
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	// Ordered consumers outlive their reader (nats.go deletes them only on a
	// reset): remove this one when the read ends, so that frequent readers
	// do not pile consumers up against the server's limit.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	// The new consumer's pending count is the number of messages its filter
	// and start select: none means there is nothing to wait for.
	if !follow && (last == 0 || c.CachedInfo().NumPending == 0) {
		return nil
	}
	it, err := c.Messages(jetstream.PullMaxMessages(1024),
		jetstream.PullExpiry(PullExpires), jetstream.PullHeartbeat(PullHeartbeat))
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			if IsTransient(err) {
				continue // the iterator re-creates its consumer
			}
			return fmt.Errorf("read %s: %w", stream, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if err := fn(m, meta); err != nil {
			return err
		}
		if !follow && (meta.Sequence.Stream >= last || meta.NumPending == 0) {
			return nil
		}
	}
}
