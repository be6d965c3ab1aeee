package dispatcher

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
)

// completions lets synchronous sends wait for their otp_delivery_completed:
// ONE core NATS subscription on the completion subject and a map from
// request id to waiter, rather than a consumer per request. A completion
// nobody waits for (async sends, other replicas' requests) costs a header
// lookup. Core NATS is at most once: a completion lost to a reconnect makes
// the waiting send answer "pending", never a wrong outcome.
type completions struct {
	b   *bus.Bus
	sub *nats.Subscription
	mu  sync.Mutex
	m   map[string]chan event.OTPDeliveryCompleted
}

func newCompletions(b *bus.Bus) *completions {
	return &completions{b: b, m: map[string]chan event.OTPDeliveryCompleted{}}
}

func (c *completions) start() error {
	def, err := c.b.Catalog.Def("otp_delivery_completed")
	if err != nil {
		return err
	}
	sub, err := c.b.NC.Subscribe(string(def.Log)+"."+string(def.Type), c.deliver)
	if err != nil {
		return fmt.Errorf("subscribe to completions: %w", err)
	}
	// Every replica sees every completion: do not drop them under load.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	c.sub = sub
	return nil
}

func (c *completions) stop() {
	if c.sub != nil {
		_ = c.sub.Unsubscribe()
	}
}

func (c *completions) deliver(m *nats.Msg) {
	v := m.Header[event.HeaderRequestID]
	if len(v) == 0 {
		return
	}
	c.mu.Lock()
	ch := c.m[v[0]]
	c.mu.Unlock()
	if ch == nil {
		return
	}
	e, err := event.FromMsg(m.Subject, m.Header, m.Data)
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
