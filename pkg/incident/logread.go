package incident

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
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
	// Inspect, if set, sees every message before it is folded (the live
	// service dead-letters the ones that are not valid events); it must
	// not change what is folded.
	Inspect func(m jetstream.Msg, seq uint64)
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

// Read reads EVENTS (bus.Scan) and hands each event to fn as a Record: the
// envelope from the headers, the data as stored. An event whose envelope
// cannot be read is handed as a clock-only record (no type) stamped with
// its storage time, so that every fold treats it the same.
func Read(ctx context.Context, js jetstream.JetStream, opts ReadOptions, fn func(*Record, Position) error) error {
	if opts.FromSeq == 0 {
		opts.FromSeq = 1
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: opts.FromSeq}
	if !opts.FromTime.IsZero() {
		t := opts.FromTime
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t}
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = 4096
	}
	var rec Record
	return bus.Scan(ctx, js, streams.Events, bus.ScanOptions{Consumer: cfg, Follow: opts.Follow, Batch: batch},
		func(m jetstream.Msg, pos bus.Position) error {
			if opts.Inspect != nil {
				opts.Inspect(m, pos.Seq)
			}
			toRecord(&rec, m, pos.Seq, pos.Stored, opts.MaxSkew)
			return fn(&rec, Position{Pending: pos.Pending, Last: pos.Last})
		})
}

func toRecord(rec *Record, m jetstream.Msg, seq uint64, stored int64, skew time.Duration) {
	h := m.Headers()
	get := event.ReadHeaders(h).Get
	*rec = Record{Seq: seq, Time: stored, Data: m.Data()}
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
