package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/event"
)

// Ack is JetStream's acknowledgement of one published event.
type Ack struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Stream   string `json:"stream"`
	Sequence uint64 `json:"seq"`
	// Duplicate: JetStream already had this event (same Nats-Msg-Id, or the
	// write-once subject was already written); nothing new was stored.
	Duplicate bool `json:"duplicate,omitempty"`
}

// ErrUnavailable reports that JetStream did not acknowledge a publish. The
// event may or may not be stored; publishing it again is safe, because the
// event id de-duplicates it.
var ErrUnavailable = errors.New("event log unavailable")

// Encode validates every event and fills its data, schema and subject; it
// publishes nothing. Publish calls it, and so can a caller that must reject
// a whole batch before any of it is published.
func (b *Bus) Encode(events ...*event.Event) ([]string, error) {
	subjects := make([]string, len(events))
	for i, e := range events {
		if err := b.Catalog.Encode(e); err != nil {
			b.metrics.PublishErrors.WithLabelValues(typeLabel(b.Catalog, e.Type), "invalid").Inc()
			return nil, fmt.Errorf("event %d (%s): %w", i, e.Type, err)
		}
		subj, err := b.Catalog.Subject(e)
		if err != nil {
			b.metrics.PublishErrors.WithLabelValues(typeLabel(b.Catalog, e.Type), "invalid").Inc()
			return nil, fmt.Errorf("event %d (%s): %w", i, e.Type, err)
		}
		subjects[i] = subj
	}
	return subjects, nil
}

// Publish validates every event against its schema (publishing nothing if
// one is invalid), publishes them pipelined with Nats-Msg-Id = event id, and
// waits for every acknowledgement.
func (b *Bus) Publish(ctx context.Context, events ...*event.Event) ([]Ack, error) {
	subjects, err := b.Encode(events...)
	if err != nil {
		return nil, err
	}
	if err := b.connected(); err != nil {
		return nil, err
	}
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, e := range events {
		msg := &nats.Msg{Subject: subjects[i], Header: e.Header(), Data: e.Raw}
		if futures[i], err = b.JS.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID)); err != nil {
			b.metrics.PublishErrors.WithLabelValues(string(e.Type), "unavailable").Inc()
			return nil, fmt.Errorf("%w: publish %s %s: %w", ErrUnavailable, e.Type, e.ID, err)
		}
	}
	return b.await(ctx, events, futures)
}

// Future is a publish in flight.
type Future struct {
	f jetstream.PubAckFuture
	e *event.Event
}

// PublishAsync validates and sends one event without waiting for its ack;
// Wait on the future (or Bus.Flush) to learn the outcome. Hot paths use it to
// overlap the round trip to JetStream with other work.
func (b *Bus) PublishAsync(e *event.Event) (*Future, error) {
	subjects, err := b.Encode(e)
	if err != nil {
		return nil, err
	}
	if err := b.connected(); err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: subjects[0], Header: e.Header(), Data: e.Raw}
	f, err := b.JS.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID))
	if err != nil {
		b.metrics.PublishErrors.WithLabelValues(string(e.Type), "unavailable").Inc()
		return nil, fmt.Errorf("%w: publish %s %s: %w", ErrUnavailable, e.Type, e.ID, err)
	}
	return &Future{f: f, e: e}, nil
}

// Wait returns the future's acknowledgement.
func (f *Future) Wait(ctx context.Context, b *Bus) (Ack, error) {
	acks, err := b.await(ctx, []*event.Event{f.e}, []jetstream.PubAckFuture{f.f})
	if err != nil {
		return Ack{}, err
	}
	return acks[0], nil
}

func (b *Bus) await(ctx context.Context, events []*event.Event, futures []jetstream.PubAckFuture) ([]Ack, error) {
	acks := make([]Ack, len(events))
	var errs []error
	for i, f := range futures {
		e := events[i]
		select {
		case pa := <-f.Ok():
			acks[i] = Ack{ID: e.ID, Type: string(e.Type), Stream: pa.Stream, Sequence: pa.Sequence, Duplicate: pa.Duplicate}
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("%w: %s %s: %v", ErrUnavailable, e.Type, e.ID, err))
		case <-ctx.Done():
			return acks, fmt.Errorf("%w: waiting for acks: %v", ErrUnavailable, ctx.Err())
		}
	}
	return acks, errors.Join(errs...)
}

// PublishOnce publishes an event whose subject is unique to it (a derived
// fact: an incident transition, a ledger entry) so that it is stored at most
// once, ever: the publish expects the subject to be empty. JetStream refuses a
// second write with "wrong last sequence" (10071 on R1, 10164 on R3) or
// answers "duplicate" inside the de-duplication window; both come back as an
// Ack with Duplicate set.
func (b *Bus) PublishOnce(ctx context.Context, e *event.Event) (Ack, error) {
	subjects, err := b.Encode(e)
	if err != nil {
		return Ack{}, err
	}
	msg := &nats.Msg{Subject: subjects[0], Header: e.Header(), Data: e.Raw}
	pa, err := b.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID), jetstream.WithExpectLastSequencePerSubject(0))
	if IsWrongLastSequence(err) {
		return Ack{ID: e.ID, Type: string(e.Type), Duplicate: true}, nil
	}
	if err != nil {
		b.metrics.PublishErrors.WithLabelValues(string(e.Type), "unavailable").Inc()
		return Ack{}, fmt.Errorf("%w: publish %s %s: %v", ErrUnavailable, e.Type, e.ID, err)
	}
	b.metrics.Published.WithLabelValues(string(e.Type)).Inc()
	return Ack{ID: e.ID, Type: string(e.Type), Stream: pa.Stream, Sequence: pa.Sequence, Duplicate: pa.Duplicate}, nil
}

// connected fails fast while the connection is down, rather than buffering
// publishes that may never be confirmed: callers then answer "unavailable"
// at once, and retry (the event id makes a retry safe).
func (b *Bus) connected() error {
	if st := b.NC.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: nats connection is %s", ErrUnavailable, st)
	}
	return nil
}

// IsWrongLastSequence reports JetStream's refusal of an expected-sequence
// publish: 10071 on an R1 stream, 10164 on a replicated one.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
