// Package bridge relays producers where they already are into Herald:
// RabbitMQ queues bound to their exchanges (amqp.go) and PostgreSQL
// transactional outboxes (outbox.go). It is built on watermill, whose
// broker adapters, router and middleware are what bridging other brokers
// needs; the event log's own paths use nats.go's jetstream, which watermill
// would slow down. A bridged message becomes exactly what the HTTP API
// would make of it (intake.go): OTP sends are POST /v1/otp/send calls with
// the message id as Idempotency-Key, events are checked as POST /v1/events
// checks them and published with the bridge role (producer rights only).
// What Herald refuses goes back to the producer's own dead letters with
// the reason; what may pass is retried, and never acknowledged before
// Herald has it, so a bridge that dies loses nothing.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/classify"
	"github.com/heraldhq/herald/pkg/event"
)

// Module is the bridge service.
var Module = fx.Module("bridge",
	fx.Provide(fx.Private, classify.Load, LoadConfig, newMetrics, newIntake),
	fx.Provide(fx.Annotate(newBridge, fx.ResultTags(`group:"readiness,flatten"`))),
)

// source is one configured bridge, once its handlers are on the router.
type source struct {
	name string
	// ready reports whether its broker is reachable.
	ready func(context.Context) error
	// close releases what the handlers used, after the router stopped.
	close func() error
}

// deps are what every source's handlers use.
type deps struct {
	intake  *intake
	metrics *metrics
	log     *slog.Logger
	wlog    watermill.LoggerAdapter
}

// newBridge puts every configured bridge on one router, runs it while the
// application runs, and returns each bridge's readiness check.
func newBridge(lc fx.Lifecycle, cfg Config, in *intake, m *metrics, log *slog.Logger) ([]api.Check, error) {
	log = log.With("service", "bridge")
	d := &deps{intake: in, metrics: m, log: log, wlog: watermill.NewSlogLogger(log.With("component", "watermill"))}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, d.wlog)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	var sources []source
	closeAll := func() error {
		var errs []error
		for _, s := range sources {
			if err := s.close(); err != nil {
				errs = append(errs, fmt.Errorf("bridge %s: %w", s.name, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, c := range cfg.AMQP {
		s, err := addAMQP(router, c, d)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("bridge %s: %w", c.Name, err), closeAll())
		}
		sources = append(sources, s)
	}
	for _, c := range cfg.Outbox {
		s, err := addOutbox(router, c, d)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("bridge %s: %w", c.Name, err), closeAll())
		}
		sources = append(sources, s)
	}
	done := make(chan error, 1)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			go func() { done <- router.Run(context.Background()) }()
			select {
			case <-router.Running():
				log.Info("bridge running", "bridges", len(sources))
				return nil
			case err := <-done:
				return fmt.Errorf("bridge: the router stopped: %w", err)
			case <-ctx.Done():
				return fmt.Errorf("bridge: the router did not start: %w", ctx.Err())
			}
		},
		OnStop: func(ctx context.Context) error {
			// Close waits for the messages in hand (CloseTimeout); what is
			// not acknowledged by then is delivered again by its broker.
			err := router.Close()
			return errors.Join(err, closeAll())
		},
	})
	checks := make([]api.Check, len(sources))
	for i, s := range sources {
		checks[i] = api.Check{Name: "bridge:" + s.name, Func: s.ready}
	}
	return checks, nil
}

// middleware is the stack every bridged message passes, outermost first:
// the correlation id carried to what the handler produces; rejections to
// the producer's dead letters through poison; a panic logged, with its
// stack, and refused as internal_error (a retry would only repeat it);
// what may pass retried with backoff, then handed back to the broker; a
// panic turned into an error.
func (d *deps) middleware(bridge string, poison message.Publisher, deadLetters string, retry RetryConfig) ([]message.HandlerMiddleware, error) {
	pq, err := middleware.PoisonQueueWithFilter(poison, deadLetters, IsRejection)
	if err != nil {
		return nil, err
	}
	r := middleware.Retry{
		MaxRetries:      retry.MaxRetries,
		InitialInterval: retry.Initial.D(),
		MaxInterval:     retry.Max.D(),
		Multiplier:      2,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !IsRejection(p.Err) && !isPanic(p.Err) },
		OnRetryHook:     func(int, time.Duration) { d.metrics.retries.WithLabelValues(bridge).Inc() },
		Logger:          d.wlog,
	}
	return []message.HandlerMiddleware{middleware.CorrelationID, pq, d.panics(bridge), r.Middleware, middleware.Recoverer}, nil
}

func isPanic(err error) bool {
	var p middleware.RecoveredPanicError
	return errors.As(err, &p)
}

// panics turns a recovered panic into a rejection: the stack goes to the
// log, not to the producer's dead letters.
func (d *deps) panics(bridge string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			var p middleware.RecoveredPanicError
			if errors.As(err, &p) {
				d.log.Error("bridged message: panic", "bridge", bridge, "messageId", msg.UUID, "panic", fmt.Sprint(p.V), "stack", p.Stacktrace)
				return out, rejectf("internal_error", "Herald failed on this message (a bug, logged with message id %q); it is not retried", msg.UUID)
			}
			return out, err
		}
	}
}

// forward publishes a message's events and counts the message: forwarded
// if EVENTS stored any of them, duplicate if it had them all already.
func (d *deps) forward(ctx context.Context, bridge string, ins []event.Input) error {
	acks, err := d.intake.Events(ctx, ins)
	if err != nil {
		return err
	}
	r := resultDuplicate
	for _, a := range acks {
		if !a.Duplicate {
			r = resultForwarded
		}
	}
	d.metrics.messages.WithLabelValues(bridge, kindEvent, r).Inc()
	d.log.Debug("bridged events", "bridge", bridge, "events", len(acks), "result", r)
	return nil
}
