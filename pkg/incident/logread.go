package incident

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// ReadOptions say which part of EVENTS to read.
type ReadOptions struct {
	// FromSeq is the first sequence to read (default 1); FromTime, if set,
	// starts at the first event stored at or after it instead.
	FromSeq  uint64
	FromTime time.Time
	// Follow keeps reading as events are appended; otherwise Read returns
	// once it has read the last event present when it started.
	Follow bool
	// Batch is how many messages each pull asks for (default 4096).
	Batch int
	// MaxSkew bounds how far ahead of its storage time an event's own time
	// may be: a producer with a clock an hour fast must not move the
	// projection's clock an hour ahead. 0 disables the bound.
	MaxSkew time.Duration
}

// Position tells a reader's handler where it is.
type Position struct {
	// Pending is how many events remain after this one (at reading time).
	Pending uint64
	// Last is the last sequence of the range (without Follow).
	Last uint64
}

// Read reads EVENTS with an ordered consumer and hands each event to fn as a
// Record: the envelope from the headers, the data as stored. An event
// whose envelope cannot be read is handed as a clock-only record (no type)
// stamped with its storage time, so that every fold treats it the same.
func Read(ctx context.Context, js jetstream.JetStream, opts ReadOptions, fn func(*Record, Position) error) error {
	s, err := js.Stream(ctx, streams.Events)
	if err != nil {
		return fmt.Errorf("read %s: %w", streams.Events, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", streams.Events, err)
	}
	last := info.State.LastSeq
	if opts.FromSeq == 0 {
		opts.FromSeq = 1
	}
	if !opts.Follow && (last == 0 || opts.FromSeq > last) {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: opts.FromSeq}
	if !opts.FromTime.IsZero() {
		t := opts.FromTime
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t}
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", streams.Events, err)
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = 4096
	}
	it, err := c.Messages(jetstream.PullMaxMessages(batch))
	if err != nil {
		return fmt.Errorf("read %s: %w", streams.Events, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	var rec Record
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("read %s: %w", streams.Events, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", streams.Events, err)
		}
		toRecord(&rec, m, meta, opts.MaxSkew)
		if err := fn(&rec, Position{Pending: meta.NumPending, Last: last}); err != nil {
			return err
		}
		if !opts.Follow && (meta.Sequence.Stream >= last || meta.NumPending == 0) {
			return nil
		}
	}
}

func toRecord(rec *Record, m jetstream.Msg, meta *jetstream.MsgMetadata, skew time.Duration) {
	h := m.Headers()
	get := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	stored := meta.Timestamp.UnixNano()
	*rec = Record{Seq: meta.Sequence.Stream, Time: stored, Data: m.Data()}
	typ, ts := get(event.HeaderType), get(event.HeaderTime)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if typ == "" || err != nil || get(event.HeaderID) == "" {
		return // clock only
	}
	rec.Type, rec.ID, rec.RequestID = typ, get(event.HeaderID), get(event.HeaderRequestID)
	rec.Time = t.UnixNano()
	if skew > 0 && rec.Time > stored+int64(skew) {
		rec.Time = stored + int64(skew)
	}
}
