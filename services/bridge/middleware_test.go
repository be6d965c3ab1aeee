package bridge

import (
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

// poisoned records what the poison middleware publishes.
type poisoned struct{ msgs []*message.Message }

func (p *poisoned) Publish(_ string, msgs ...*message.Message) error {
	p.msgs = append(p.msgs, msgs...)
	return nil
}
func (p *poisoned) Close() error { return nil }

// The middleware stack: a rejection goes to the dead letters at once; a
// panic too, as internal_error without its stack; what may pass is tried
// again, then handed back (the error returned: the broker's nack).
func TestTheMiddlewareRetriesWhatMayPassAndDeadLettersTheRest(t *testing.T) {
	retry := RetryConfig{MaxRetries: 2, Initial: config.Duration(1e6), Max: config.Duration(2e6)}
	for _, c := range []struct {
		name       string
		fail       func() error
		tries      int
		deadReason string // "": handed back
	}{
		{"a rejection", func() error { return rejectf("invalid_json", "not JSON") }, 1, "invalid_json: not JSON"},
		{"a panic", func() error { panic("boom") }, 1, "internal_error"},
		{"what may pass", func() error { return errors.New("herald unavailable") }, 3, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := heraldtest.Logger(t)
			d := &deps{metrics: newMetrics(prometheus.NewRegistry(), Config{}), log: log, wlog: watermill.NewSlogLogger(log)}
			dead := &poisoned{}
			mw, err := d.middleware("b", dead, "dead", retry)
			if err != nil {
				t.Fatal(err)
			}
			tries := 0
			var h message.HandlerFunc = func(*message.Message) ([]*message.Message, error) { tries++; return nil, c.fail() }
			for i := len(mw) - 1; i >= 0; i-- {
				h = mw[i](h)
			}
			_, err = h(message.NewMessage("m1", []byte("x")))
			if tries != c.tries {
				t.Errorf("%d tries, want %d", tries, c.tries)
			}
			if c.deadReason == "" {
				if err == nil || len(dead.msgs) != 0 {
					t.Errorf("handed back: error %v, dead letters %d; want the error and none", err, len(dead.msgs))
				}
				return
			}
			if err != nil || len(dead.msgs) != 1 {
				t.Fatalf("error %v, %d dead letters; want none and one", err, len(dead.msgs))
			}
			reason := dead.msgs[0].Metadata.Get(middleware.ReasonForPoisonedKey)
			if !strings.HasPrefix(reason, c.deadReason) || strings.Contains(reason, "goroutine") {
				t.Errorf("reason %q, want %q and no stack", reason, c.deadReason)
			}
		})
	}
}
