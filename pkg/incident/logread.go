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

// Read reads EVENTS with an ordered consumer and hands each event to fn as a
// Record: the envelope from the headers, the data as stored. An event
// whose envelope cannot be read is handed as a clock-only record (no type)
// stamped with its storage time, so that every fold treats it the same.
func Read(ctx context.Context, js jetstream.JetStream, opts ReadOptions, fn func(*Record, Position) error) error {
	it, last, err := openEvents(ctx, js, &opts)
	if err != nil || it == nil {
		return err
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
		seq, stored, pending, ok := ackInfo(m.Reply())
		if !ok {
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read %s: %w", streams.Events, err)
			}
			seq, stored, pending = meta.Sequence.Stream, meta.Timestamp.UnixNano(), meta.NumPending
		}
		if opts.Inspect != nil {
			opts.Inspect(m, seq)
		}
		toRecord(&rec, m, seq, stored, opts.MaxSkew)
		if err := fn(&rec, Position{Pending: pending, Last: last}); err != nil {
			return err
		}
		if !opts.Follow && (seq >= last || pending == 0) {
			return nil
		}
	}
}

// openEvents starts reading EVENTS where opts say, and returns the
// iterator with the stream's last sequence at that moment (a nil iterator:
// nothing to read, without Follow). It fills in opts' defaults.
func openEvents(ctx context.Context, js jetstream.JetStream, opts *ReadOptions) (jetstream.MessagesContext, uint64, error) {
	s, err := js.Stream(ctx, streams.Events)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", streams.Events, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", streams.Events, err)
	}
	last := info.State.LastSeq
	if opts.FromSeq == 0 {
		opts.FromSeq = 1
	}
	if !opts.Follow && (last == 0 || opts.FromSeq > last) {
		return nil, last, nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: opts.FromSeq}
	if !opts.FromTime.IsZero() {
		t := opts.FromTime
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t}
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", streams.Events, err)
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = 4096
	}
	it, err := c.Messages(jetstream.PullMaxMessages(batch))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", streams.Events, err)
	}
	return it, last, nil
}

// ackInfo reads the stream sequence, storage time and pending count from a
// JetStream reply subject without allocating: $JS.ACK.<stream>.<consumer>.
// <delivered>.<sseq>.<cseq>.<tm>.<pending> (v1) or, from newer servers,
// $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>.<token>.
// Anything else is left to the client's own parser.
func ackInfo(reply string) (seq uint64, ts int64, pending uint64, ok bool) {
	const prefix = "$JS.ACK."
	if len(reply) < len(prefix) || reply[:len(prefix)] != prefix {
		return 0, 0, 0, false
	}
	var tok [12]string
	n, start := 0, 0
	for i := 0; i <= len(reply); i++ {
		if i == len(reply) || reply[i] == '.' {
			if n == len(tok) {
				return 0, 0, 0, false
			}
			tok[n] = reply[start:i]
			n++
			start = i + 1
		}
	}
	var base int
	switch {
	case n == 9:
		base = 0
	case n >= 11:
		base = 2
	default:
		return 0, 0, 0, false
	}
	seq, ok1 := parseUint(tok[base+5])
	t, ok2 := parseUint(tok[base+7])
	pending, ok3 := parseUint(tok[base+8])
	return seq, int64(t), pending, ok1 && ok2 && ok3
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

func toRecord(rec *Record, m jetstream.Msg, seq uint64, stored int64, skew time.Duration) {
	h := m.Headers()
	get := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
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
