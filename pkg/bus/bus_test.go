package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/streams"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// examples builds one valid event of every catalog type from the schemas' examples.
func examples(t *testing.T, b *bus.Bus) []*event.Event {
	var out []*event.Event
	for _, d := range b.Catalog.Defs() {
		e := &event.Event{Type: d.Type, Raw: d.Example}
		if err := b.Catalog.Decode(e); err != nil {
			t.Fatal(err)
		}
		out = append(out, event.New("test", e.Data, event.WithRequestID("req-"+string(d.Type))))
	}
	return out
}

func TestEveryCatalogTypeRoundTripsThroughJetStream(t *testing.T) {
	b := heraldtest.JetStream(t)
	sent := examples(t, b)
	acks, err := b.Publish(ctx(t), sent...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*event.Event{}
	for i, e := range sent {
		want[e.ID] = e
		if acks[i].Sequence == 0 || acks[i].Duplicate {
			t.Errorf("%s: ack %+v", e.Type, acks[i])
		}
	}
	// One consumer per log, each filtered to its subjects.
	for _, s := range []string{streams.Events, streams.Incidents, streams.Notifications} {
		got := make(chan *event.Event, len(sent))
		sub, err := b.Consume(ctx(t), bus.ConsumerConfig{Stream: s, Durable: "roundtrip"}, func(_ context.Context, e *event.Event) error {
			got <- e
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n := len(heraldtest.Messages(t, b.JS, s))
		for range n {
			select {
			case e := <-got:
				w, ok := want[e.ID]
				if !ok {
					t.Fatalf("unexpected event %s", e.ID)
				}
				delete(want, e.ID)
				if e.Type != w.Type || e.RequestID != w.RequestID || e.Source != "test" || !e.Time.Equal(w.Time) ||
					e.Stream != s || e.Sequence == 0 || e.DataSchema != w.DataSchema {
					t.Errorf("%s: envelope changed: %+v", w.Type, e)
				}
				if fmt.Sprintf("%#v", e.Data) != fmt.Sprintf("%#v", w.Data) {
					t.Errorf("%s: data changed:\n got %#v\nwant %#v", w.Type, e.Data, w.Data)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: timed out", s)
			}
		}
		if err := sub.Stop(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != 0 {
		for _, e := range want {
			t.Errorf("%s was never consumed", e.Type)
		}
	}
}

func TestPublishRejectsAnInvalidBatchWhole(t *testing.T) {
	b := heraldtest.JetStream(t)
	good := event.New("test", event.OTPRevoked{App: "shop", Reason: "delivery_failed"})
	bad := event.New("test", event.OTPRevoked{App: "shop"})
	_, err := b.Publish(ctx(t), good, bad)
	var se *event.SchemaError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a schema error", err)
	}
	if n := len(heraldtest.Messages(t, b.JS, streams.Events)); n != 0 {
		t.Fatalf("%d events stored from a rejected batch", n)
	}
}

func TestADuplicateEventIDIsStoredOnce(t *testing.T) {
	b := heraldtest.JetStream(t)
	e := event.New("test", event.OTPVerified{App: "shop", Attempts: 1})
	first, err := b.Publish(ctx(t), e)
	if err != nil {
		t.Fatal(err)
	}
	again := *e
	again.Raw = nil
	second, err := b.Publish(ctx(t), &again)
	if err != nil {
		t.Fatal(err)
	}
	if !second[0].Duplicate || second[0].Sequence != first[0].Sequence {
		t.Errorf("second publish: %+v, first: %+v", second[0], first[0])
	}
	if n := len(heraldtest.Messages(t, b.JS, streams.Events)); n != 1 {
		t.Fatalf("stored %d times", n)
	}
}

func TestPublishOnceStoresASubjectOnceEvenOutsideTheDedupWindow(t *testing.T) {
	b := heraldtest.JetStream(t)
	mk := func() *event.Event {
		// A fresh event id each time: only the subject makes it the same fact.
		return event.New("test", event.IncidentResolved{
			IncidentID: "inc-0123456789abcdef", Rule: "r", Group: map[string]string{"app": "a"},
			OpenedAt: time.Unix(0, 0).UTC(), ResolvedAt: time.Unix(60, 0).UTC(), PeakSeverity: "P2",
			Evidence: event.Evidence{Window: "5m0s"},
		}, event.WithSubject("incidents.incident_resolved.inc-0123456789abcdef.0"))
	}
	a1, err := b.PublishOnce(ctx(t), mk())
	if err != nil || a1.Duplicate {
		t.Fatalf("first: %+v %v", a1, err)
	}
	a2, err := b.PublishOnce(ctx(t), mk())
	if err != nil || !a2.Duplicate {
		t.Fatalf("second: %+v %v", a2, err)
	}
	if n := len(heraldtest.Messages(t, b.JS, streams.Incidents)); n != 1 {
		t.Fatalf("stored %d times", n)
	}
}

func TestRawPublicationsThatAreNotEventsGoToTheDLQWithTheReason(t *testing.T) {
	b := heraldtest.JetStream(t)
	valid := event.New("test", event.OTPVerified{App: "shop", Attempts: 1})
	h := func(typ string) nats.Header {
		e := event.New("raw", event.OTPVerified{})
		hd := e.Header()
		hd.Set(event.HeaderType, typ)
		return hd
	}
	call := `{"integration":"stripe","operation":"op","statusCode":200,"latencyMs":1}`
	raw := []struct {
		name    string
		subject string
		header  nats.Header
		body    string
		reason  string
		detail  string
	}{
		{"no envelope", "events.raw", nil, `{"app":"shop","attempts":1}`, bus.ReasonEnvelope, "ce-specversion"},
		{"unknown type", "events.otp_teleported", h("otp_teleported"), `{}`, bus.ReasonUnknownType, "otp_teleported"},
		{"invalid JSON", "events.otp_verified", h("otp_verified"), `{"app":`, bus.ReasonMalformed, "otp_verified"},
		{"schema violation", "events.otp_verified", h("otp_verified"), `{"app":"shop","attempts":0}`, bus.ReasonSchema, "/attempts"},
		// A valid event of one type on another type's subject is handled as neither.
		{"subject of another type", "events.otp_verified", h("integration_call_completed"), call, bus.ReasonSubject,
			`subject "events.otp_verified" carries ce-type integration_call_completed`},
		{"subject of another log", "events.incident_opened.x.0", h("otp_verified"), `{"app":"shop","attempts":1}`, bus.ReasonSubject, "events.otp_verified"},
		{"type only as a prefix", "events.otp_verified_forged", h("otp_verified"), `{"app":"shop","attempts":1}`, bus.ReasonSubject, "otp_verified_forged"},
	}
	for _, r := range raw {
		if _, err := b.JS.PublishMsg(ctx(t), &nats.Msg{Subject: r.subject, Header: r.header, Data: []byte(r.body)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Publish(ctx(t), valid); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	sub, err := b.Consume(ctx(t), bus.ConsumerConfig{Stream: streams.Events, Durable: "guard"}, func(_ context.Context, e *event.Event) error {
		if e.ID != valid.ID {
			t.Errorf("handler got a bad event: %+v", e)
		}
		handled.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx(t))
	heraldtest.Eventually(t, 10*time.Second, "dead letters", func() bool {
		return len(heraldtest.Messages(t, b.JS, streams.DLQ)) == len(raw)
	})
	dead := heraldtest.Messages(t, b.JS, streams.DLQ)
	for i, r := range raw {
		m := dead[i]
		if got := m.Headers().Get(bus.HeaderDLQReason); got != r.reason {
			t.Errorf("%s: reason %q, want %q", r.name, got, r.reason)
		}
		if got := m.Headers().Get(bus.HeaderDLQError); !strings.Contains(got, r.detail) {
			t.Errorf("%s: error %q does not mention %q", r.name, got, r.detail)
		}
		if string(m.Data()) != r.body || m.Headers().Get(bus.HeaderDLQSubject) != r.subject ||
			m.Headers().Get(bus.HeaderDLQConsumer) != "guard" || m.Headers().Get(bus.HeaderDLQSequence) != fmt.Sprint(i+1) {
			t.Errorf("%s: original not kept: %q %v", r.name, m.Data(), m.Headers())
		}
		if r.header != nil && m.Headers().Get(event.HeaderID) != r.header.Get(event.HeaderID) {
			t.Errorf("%s: original headers lost: %v", r.name, m.Headers())
		}
	}
	heraldtest.Eventually(t, 5*time.Second, "the valid event", func() bool { return handled.Load() == 1 })
	assertSettled(t, b, "guard")
}

func TestAHandlerThatKeepsFailingLandsInTheDLQAfterMaxDeliver(t *testing.T) {
	b := heraldtest.JetStream(t)
	e := event.New("test", event.OTPVerified{App: "shop", Attempts: 1})
	if _, err := b.Publish(ctx(t), e); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	sub, err := b.Consume(ctx(t), bus.ConsumerConfig{
		Stream: streams.Events, Durable: "flaky", MaxDeliver: 3,
		Backoff: []time.Duration{10 * time.Millisecond},
	}, func(context.Context, *event.Event) error {
		calls.Add(1)
		return errors.New("downstream is down")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx(t))
	heraldtest.Eventually(t, 10*time.Second, "dead letter", func() bool {
		return len(heraldtest.Messages(t, b.JS, streams.DLQ)) == 1
	})
	m := heraldtest.Messages(t, b.JS, streams.DLQ)[0]
	if m.Headers().Get(bus.HeaderDLQReason) != bus.ReasonExhausted ||
		!strings.Contains(m.Headers().Get(bus.HeaderDLQError), "downstream is down") ||
		m.Headers().Get(bus.HeaderDLQDeliveries) != "3" || m.Headers().Get(bus.HeaderDLQMsgID) != e.ID {
		t.Errorf("dead letter headers: %v", m.Headers())
	}
	if calls.Load() != 3 {
		t.Errorf("handler called %d times, want 3", calls.Load())
	}
	assertSettled(t, b, "flaky")
}

func TestPermanentErrorsAndPanicsAreDeadLetteredNotLooped(t *testing.T) {
	b := heraldtest.JetStream(t)
	perm := event.New("test", event.OTPVerified{App: "perm", Attempts: 1})
	boom := event.New("test", event.OTPVerified{App: "boom", Attempts: 1})
	if _, err := b.Publish(ctx(t), perm, boom); err != nil {
		t.Fatal(err)
	}
	var calls sync.Map
	sub, err := b.Consume(ctx(t), bus.ConsumerConfig{
		Stream: streams.Events, Durable: "strict", MaxDeliver: 2, Backoff: []time.Duration{10 * time.Millisecond},
	}, func(_ context.Context, e *event.Event) error {
		n, _ := calls.LoadOrStore(e.ID, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if e.ID == perm.ID {
			return bus.Permanent(errors.New("no such app"))
		}
		panic("boom")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx(t))
	heraldtest.Eventually(t, 10*time.Second, "dead letters", func() bool {
		return len(heraldtest.Messages(t, b.JS, streams.DLQ)) == 2
	})
	reasons := map[string]string{}
	for _, m := range heraldtest.Messages(t, b.JS, streams.DLQ) {
		reasons[m.Headers().Get(bus.HeaderDLQMsgID)] = m.Headers().Get(bus.HeaderDLQReason) + ": " + m.Headers().Get(bus.HeaderDLQError)
	}
	if r := reasons[perm.ID]; !strings.Contains(r, "handler: no such app") {
		t.Errorf("permanent: %q", r)
	}
	if r := reasons[boom.ID]; !strings.Contains(r, "exhausted") || !strings.Contains(r, "panicked: boom") {
		t.Errorf("panic: %q", r)
	}
	if n, _ := calls.Load(perm.ID); n.(*atomic.Int32).Load() != 1 {
		t.Errorf("a permanent failure was retried")
	}
}

func TestStopDrainsInFlightHandlersAndAcksThem(t *testing.T) {
	b := heraldtest.JetStream(t)
	const n = 2000
	events := make([]*event.Event, n)
	for i := range events {
		events[i] = event.New("test", event.OTPVerified{App: "shop", Attempts: 1})
	}
	if _, err := b.Publish(ctx(t), events...); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	seen := sync.Map{}
	handler := func(_ context.Context, e *event.Event) error {
		if _, dup := seen.LoadOrStore(e.ID, true); dup {
			t.Errorf("event %s handled twice", e.ID)
		}
		handled.Add(1)
		time.Sleep(50 * time.Microsecond)
		return nil
	}
	cfg := bus.ConsumerConfig{Stream: streams.Events, Durable: "drain", Concurrency: 4, Batch: 100}
	sub, err := b.Consume(ctx(t), cfg, handler)
	if err != nil {
		t.Fatal(err)
	}
	heraldtest.Eventually(t, 10*time.Second, "some progress", func() bool { return handled.Load() > 200 })
	if err := sub.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	// Resume: the rest arrives, nothing twice.
	sub, err = b.Consume(ctx(t), cfg, handler)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx(t))
	heraldtest.Eventually(t, 20*time.Second, "all events", func() bool { return handled.Load() == n })
	assertSettled(t, b, "drain")
}

// assertSettled checks that a consumer has nothing pending, unacknowledged or redelivered.
func assertSettled(t *testing.T, b *bus.Bus, durable string) {
	t.Helper()
	heraldtest.Eventually(t, 10*time.Second, "consumer "+durable+" settled", func() bool {
		c, err := b.JS.Consumer(ctx(t), streams.Events, durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
}

func TestStopReturnsWhenTheServerIsGone(t *testing.T) {
	srv := heraldtest.Server(t)
	b := heraldtest.Connect(t, srv)
	if _, err := b.Publish(ctx(t), event.New("test", event.OTPVerified{App: "shop", Attempts: 1})); err != nil {
		t.Fatal(err)
	}
	inHandler, release := make(chan struct{}), make(chan struct{})
	sub, err := b.Consume(ctx(t), bus.ConsumerConfig{Stream: streams.Events, Durable: "orphan"},
		func(context.Context, *event.Event) error {
			close(inHandler)
			<-release
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	<-inHandler
	srv.Shutdown()
	srv.WaitForShutdown()
	time.AfterFunc(100*time.Millisecond, func() { close(release) })
	stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- sub.Stop(stopCtx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop hangs when the server is unreachable")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop took %s", d)
	}
}
