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
func (b *Bus) ReadAll(ctx context.Context, stream string, subjects []string, fn func(e *event.Event, err error) error) error {
	opts := ScanOptions{Consumer: jetstream.OrderedConsumerConfig{FilterSubjects: subjects}}
	return b.Scan(ctx, stream, opts, func(m jetstream.Msg, pos Position) error {
		e, _, derr := b.Decode(m)
		if e != nil {
			e.Stream, e.Sequence = stream, pos.Seq
		}
		if derr != nil {
			derr = fmt.Errorf("%s seq %d: %w", stream, pos.Seq, derr)
		}
		return fn(e, derr)
	})
}

// ScanOptions say what a scan reads.
type ScanOptions struct {
	// Consumer selects the subjects and the start (default: the first).
	Consumer jetstream.OrderedConsumerConfig
	// Follow keeps reading as messages are appended, until ctx ends;
	// otherwise the scan stops at the last message present when it began.
	Follow bool
	// Batch is how many messages each pull asks for (default 1024).
	Batch int
}

// Position is where a scan is.
type Position struct {
	// Seq is the message's stream sequence, Stored its storage time (Unix
	// nanoseconds).
	Seq    uint64
	Stored int64
	// Pending is how many messages the consumer had left after this one
	// when it was delivered.
	Pending uint64
	// Last is the stream's last sequence when the scan began.
	Last uint64
}

// StoredAt is the message's storage time.
func (p Position) StoredAt() time.Time { return time.Unix(0, p.Stored).UTC() }

// Scan hands the raw messages of an ordered consumer of stream to fn, in
// order, with their position. It is the one way Herald reads a stream
// (ReadAll, the incident projection, herald tail, dead letters, tests).
func (b *Bus) Scan(ctx context.Context, stream string, opts ScanOptions, fn func(jetstream.Msg, Position) error) error {
	return Scan(ctx, b.JS, stream, opts, fn)
}

// Scan is Bus.Scan on any JetStream context.
//
// It pulls in batches through the ordered consumer's iterator, which
// re-creates the consumer where it stopped when its server is lost, so a
// read survives the loss of a cluster node.
func Scan(ctx context.Context, js jetstream.JetStream, stream string, opts ScanOptions, fn func(jetstream.Msg, Position) error) error {
	s, err := Retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, stream) })
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	last := s.CachedInfo().State.LastSeq
	cfg := opts.Consumer
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
	if !opts.Follow && (last == 0 || c.CachedInfo().NumPending == 0) {
		return nil
	}
	return pull(ctx, c, stream, opts, last, fn)
}

// pull hands the consumer's messages to fn until the scan's end: the last
// message present when it began or, following, the end of ctx.
func pull(ctx context.Context, c jetstream.Consumer, stream string, opts ScanOptions, last uint64, fn func(jetstream.Msg, Position) error) error {
	batch := opts.Batch
	if batch <= 0 {
		batch = 1024
	}
	it, err := c.Messages(jetstream.PullMaxMessages(batch),
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
		pos, err := position(m)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		pos.Last = last
		if err := fn(m, pos); err != nil {
			return err
		}
		if !opts.Follow && (pos.Seq >= last || pos.Pending == 0) {
			return nil
		}
	}
}

// position reads a message's sequence, storage time and pending count from
// its reply subject without allocating (a rebuild reads millions), or from
// the client's metadata parser when the subject has another form.
func position(m jetstream.Msg) (Position, error) {
	if seq, ts, pending, ok := ackInfo(m.Reply()); ok {
		return Position{Seq: seq, Stored: ts, Pending: pending}, nil
	}
	meta, err := m.Metadata()
	if err != nil {
		return Position{}, err
	}
	return Position{Seq: meta.Sequence.Stream, Stored: meta.Timestamp.UnixNano(), Pending: meta.NumPending}, nil
}
