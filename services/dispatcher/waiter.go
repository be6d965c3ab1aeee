package dispatcher

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// completions lets synchronous sends wait for their otp_delivery_completed:
// ONE ordered consumer of the completion subject per process and a map from
// request id to waiter, rather than a consumer per request. It reads the
// EVENTS stream, not the subject: a completion reaches a waiter only once
// the log has stored it, so a send is never answered from a message that a
// failing stream leader received and then lost (design §7). A completion
// nobody waits for (async sends, other replicas' requests) costs a header
// lookup. The ordered consumer re-creates itself after a server is lost,
// from the last sequence it delivered; a completion that arrives too late
// makes the waiting send answer "pending", never a wrong outcome.
type completions struct {
	b  *bus.Bus
	cc jetstream.ConsumeContext
	mu sync.Mutex
	m  map[string]chan event.OTPDeliveryCompleted
}

func newCompletions(b *bus.Bus) *completions {
	return &completions{b: b, m: map[string]chan event.OTPDeliveryCompleted{}}
}

func (c *completions) start(ctx context.Context) error {
	def, err := c.b.Catalog.Def("otp_delivery_completed")
	if err != nil {
		return err
	}
	subject := string(def.Log) + "." + string(def.Type)
	cons, err := bus.Retry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return c.b.JS.OrderedConsumer(ctx, streams.Events, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy})
	})
	if err != nil {
		return fmt.Errorf("read completions: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { c.deliver(m) },
		jetstream.PullExpiry(bus.PullExpires), jetstream.PullHeartbeat(bus.PullHeartbeat))
	if err != nil {
		return fmt.Errorf("read completions: %w", err)
	}
	c.cc = cc
	return nil
}

func (c *completions) stop() {
	if c.cc != nil {
		c.cc.Stop()
	}
}

func (c *completions) deliver(m jetstream.Msg) {
	v := m.Headers()[event.HeaderRequestID]
	if len(v) == 0 {
		return
	}
	c.mu.Lock()
	ch := c.m[v[0]]
	c.mu.Unlock()
	if ch == nil {
		return
	}
	e, err := event.FromMsg(m.Subject(), m.Headers(), m.Data())
	if err != nil || c.b.Catalog.Decode(e) != nil {
		return
	}
	if d, ok := event.As[event.OTPDeliveryCompleted](e); ok {
		select {
		case ch <- d:
		default:
		}
	}
}

// wait registers a waiter; call it before publishing the dispatch so that
// the completion cannot arrive first. cancel removes it.
func (c *completions) wait(requestID string) (<-chan event.OTPDeliveryCompleted, func()) {
	ch := make(chan event.OTPDeliveryCompleted, 1)
	c.mu.Lock()
	c.m[requestID] = ch
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.m, requestID)
		c.mu.Unlock()
	}
}
