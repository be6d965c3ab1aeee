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
// waits for every acknowledgement. A publish that fails transiently (a
// stream electing a new leader, a connection moving to another server) is
// sent again until ctx ends: the event id makes a repeat harmless, so the
// loss of one server of a cluster shows up as latency, not as an error.
func (b *Bus) Publish(ctx context.Context, events ...*event.Event) ([]Ack, error) {
	subjects, err := b.Encode(events...)
	if err != nil {
		return nil, err
	}
	if err := b.waitConnected(ctx); err != nil {
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
// overlap the round trip to JetStream with other work. While the connection
// is re-established the message waits in the client's reconnect buffer.
func (b *Bus) PublishAsync(e *event.Event) (*Future, error) {
	subjects, err := b.Encode(e)
	if err != nil {
		return nil, err
	}
	if err := b.notClosed(); err != nil {
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

// await collects the acks of futures, publishing again (same message, same
// Nats-Msg-Id) each one that failed transiently or had no answer within
// retryWindow, until ctx ends.
func (b *Bus) await(ctx context.Context, events []*event.Event, futures []jetstream.PubAckFuture) ([]Ack, error) {
	acks := make([]Ack, len(events))
	var errs []error
	for i, f := range futures {
		e := events[i]
		pa, err := b.ackOf(ctx, f, func(m *nats.Msg) (jetstream.PubAckFuture, error) {
			return b.JS.PublishMsgAsync(m, jetstream.WithMsgID(e.ID))
		})
		if err != nil {
			if ctx.Err() != nil {
				return acks, fmt.Errorf("%w: waiting for acks: %w", ErrUnavailable, err)
			}
			errs = append(errs, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, e.Type, e.ID, err))
			continue
		}
		acks[i] = Ack{ID: e.ID, Type: string(e.Type), Stream: pa.Stream, Sequence: pa.Sequence, Duplicate: pa.Duplicate}
	}
	return acks, errors.Join(errs...)
}

// ackOf waits for one publish's ack and re-sends its message with again
// while the failure is transient. It returns the last error when the
// failure is not transient or ctx ends first.
func (b *Bus) ackOf(ctx context.Context, f jetstream.PubAckFuture, again func(*nats.Msg) (jetstream.PubAckFuture, error)) (*jetstream.PubAck, error) {
	timer := time.NewTimer(retryWindow)
	defer timer.Stop()
	var last error
	for {
		select {
		case pa := <-f.Ok():
			return pa, nil
		case err := <-f.Err():
			if !IsTransient(err) {
				return nil, err
			}
			last = err
			// Give the cluster a moment before trying again.
			select {
			case <-ctx.Done():
				return nil, errors.Join(last, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		case <-timer.C:
			last = jetstream.ErrAsyncPublishTimeout
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return nil, errors.Join(last, ctx.Err())
		}
		if err := b.notClosed(); err != nil {
			return nil, err
		}
		// A copy: the client may still read the first message's headers
		// (its reconnect and timeout handlers), and publishing sets them.
		m := f.Msg()
		nf, err := again(&nats.Msg{Subject: m.Subject, Header: cloneHeader(m.Header), Data: m.Data})
		if err != nil {
			return nil, err
		}
		f = nf
		timer.Reset(retryWindow)
	}
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
	// Repeating the write after a lost answer is refused as "wrong last
	// sequence": that is this same event, already stored.
	pa, err := Retry(ctx, func(ctx context.Context) (*jetstream.PubAck, error) {
		return b.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID), jetstream.WithExpectLastSequencePerSubject(0))
	})
	if IsWrongLastSequence(err) {
		return Ack{ID: e.ID, Type: string(e.Type), Duplicate: true}, nil
	}
	if err != nil {
		b.metrics.PublishErrors.WithLabelValues(string(e.Type), "unavailable").Inc()
		if errors.Is(err, ErrUnavailable) {
			return Ack{}, fmt.Errorf("publish %s %s: %w", e.Type, e.ID, err)
		}
		return Ack{}, fmt.Errorf("%w: publish %s %s: %w", ErrUnavailable, e.Type, e.ID, err)
	}
	b.metrics.Published.WithLabelValues(string(e.Type)).Inc()
	return Ack{ID: e.ID, Type: string(e.Type), Stream: pa.Stream, Sequence: pa.Sequence, Duplicate: pa.Duplicate}, nil
}

func cloneHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// waitConnected waits, within ctx, for a connection that is being
// re-established (its server was lost): the caller's deadline, not the
// reconnect, decides when to give up.
func (b *Bus) waitConnected(ctx context.Context) error {
	for {
		switch st := b.NC.Status(); st {
		case nats.CONNECTED:
			return nil
		case nats.CLOSED, nats.DRAINING_PUBS, nats.DRAINING_SUBS:
			return fmt.Errorf("%w: nats connection is %s", ErrUnavailable, st)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: nats connection is %s: %w", ErrUnavailable, b.NC.Status(), ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// notClosed refuses to publish on a connection that will never send again;
// a reconnecting one buffers the message and sends it once reconnected.
func (b *Bus) notClosed() error {
	switch st := b.NC.Status(); st {
	case nats.CLOSED, nats.DRAINING_PUBS, nats.DRAINING_SUBS:
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
