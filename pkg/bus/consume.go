package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/event"
)

// Handler handles one decoded event. Returning nil acknowledges it; an error
// asks for redelivery after a backoff, until MaxDeliver, then dead-letters
// it; a Permanent error dead-letters it at once.
type Handler func(ctx context.Context, e *event.Event) error

// permanent marks an error that no retry can fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the consumer dead-letters the event at once.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool { var p permanent; return errors.As(err, &p) }

// ConsumerConfig configures a durable pull consumer.
type ConsumerConfig struct {
	Stream string
	// Durable names the consumer; it survives restarts and is shared by every
	// process that consumes with the same name (they split the work).
	Durable        string
	FilterSubjects []string
	// DeliverPolicy and OptStartSeq apply when the consumer is first created.
	DeliverPolicy jetstream.DeliverPolicy
	OptStartSeq   uint64
	// MaxDeliver is how many deliveries a message gets before it goes to the
	// DLQ (default 5). Herald counts them itself (the server-side limit is
	// off) so that the last failure is always dead-lettered, never stranded.
	MaxDeliver int
	// Backoff is the delay before each redelivery after a failure (default
	// 250ms, 1s, 5s, 15s; the last repeats).
	Backoff []time.Duration
	// AckWait is how long the server waits for an ack before redelivering
	// (default 30s).
	AckWait time.Duration
	// MaxAckPending bounds messages in flight (default 4096).
	MaxAckPending int
	// Batch is how many messages each pull asks for (default 1000).
	Batch int
	// Concurrency is how many handlers run at once (default 1: in stream order).
	Concurrency int
}

func (c *ConsumerConfig) defaults() {
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{250 * time.Millisecond, time.Second, 5 * time.Second, 15 * time.Second}
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 4096
	}
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
}

// Subscription is a running consumer.
type Subscription struct {
	b       *Bus
	cfg     ConsumerConfig
	cc      jetstream.ConsumeContext
	work    chan jetstream.Msg
	abort   chan struct{} // closed when a stop runs out of time: drop what is queued
	aborted sync.Once
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	once    sync.Once

	jcfg       jetstream.ConsumerConfig
	ccMu       sync.Mutex // guards cc, replaced when the consumer is re-created
	stopped    atomic.Bool
	recreating atomic.Bool
}

func (s *Subscription) consumeContext() jetstream.ConsumeContext {
	s.ccMu.Lock()
	defer s.ccMu.Unlock()
	return s.cc
}

// Consume creates (or updates) the durable consumer and runs h on every
// event. Events that cannot be decoded or validated, that h rejects
// permanently, or that exhaust MaxDeliver go to the DLQ stream with the
// reason and their original headers, and are then terminated: never dropped,
// never redelivered forever.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) (*Subscription, error) {
	cfg.defaults()
	jcfg := cfg.jetstream()
	cons, err := Retry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return b.JS.CreateOrUpdateConsumer(ctx, cfg.Stream, jcfg)
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Subscription{b: b, cfg: cfg, cancel: cancel, abort: make(chan struct{}), jcfg: jcfg}
	s.runWorkers(b.newProcessor(hctx, &s.cfg, h))
	if s.cc, err = s.consumeWith(cons); err != nil {
		cancel()
		return nil, fmt.Errorf("consume %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	b.track(s)
	return s, nil
}

// jetstream is the durable's server-side configuration.
func (cfg ConsumerConfig) jetstream() jetstream.ConsumerConfig {
	jcfg := jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  cfg.MaxAckPending,
		FilterSubjects: cfg.FilterSubjects,
		DeliverPolicy:  cfg.DeliverPolicy,
		OptStartSeq:    cfg.OptStartSeq,
	}
	if len(cfg.FilterSubjects) == 1 {
		// One filter travels in the API subject
		// ($JS.API.CONSUMER.CREATE.<stream>.<durable>.<filter>), where the
		// server's permissions can check it (pkg/access).
		jcfg.FilterSubject, jcfg.FilterSubjects = cfg.FilterSubjects[0], nil
	}
	return jcfg
}

// newProcessor builds the handler's side of a consumer, with series only
// for what can happen: the types the filter lets through (and "unknown"),
// not every type of the catalog.
func (b *Bus) newProcessor(ctx context.Context, cfg *ConsumerConfig, h Handler) *processor {
	p := &processor{b: b, cfg: cfg, h: h, ctx: ctx, tm: map[event.Type]*typeMetrics{}}
	types := b.Receivable(cfg.Stream, cfg.FilterSubjects...)
	for _, t := range types {
		p.tm[t] = newTypeMetrics(b.metrics, cfg.Durable, string(t))
	}
	p.unknown = newUnknownMetrics(b.metrics, cfg.Durable)
	b.metrics.InitChecked(cfg.Durable, types)
	b.metrics.initDeadLettered(cfg.Durable, types, ReasonHandler, ReasonExhausted)
	return p
}

// runWorkers starts the handlers on their own goroutines, fed by the
// client's delivery callback: decoding and handling then overlap the
// client's own work instead of queueing behind it. One worker keeps stream
// order.
func (s *Subscription) runWorkers(p *processor) {
	s.work = make(chan jetstream.Msg, max(256, s.cfg.Concurrency))
	for range s.cfg.Concurrency {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case m, ok := <-s.work:
					if !ok {
						return
					}
					p.process(m)
				case <-s.abort:
					return // what is left is not acknowledged: the server redelivers it
				}
			}
		}()
	}
}

// consumeWith starts consuming cons into the workers (again, when the
// consumer is re-created).
func (s *Subscription) consumeWith(cons jetstream.Consumer) (jetstream.ConsumeContext, error) {
	deliver := func(m jetstream.Msg) {
		select {
		case s.work <- m:
		case <-s.abort: // not acknowledged: the server redelivers it
		}
	}
	return cons.Consume(deliver,
		jetstream.PullMaxMessages(s.cfg.Batch),
		jetstream.PullExpiry(PullExpires), jetstream.PullHeartbeat(PullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				s.recreate()
			}
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				s.b.log.Warn("consumer error", "consumer", s.cfg.Durable, "error", err)
			}
		}))
}

// ready reports whether the consumer still exists on the server and is
// being consumed; one found missing (deleted by an operator, lost with its
// stream) is re-created under its name, so the running pull resumes.
func (s *Subscription) ready(ctx context.Context) error {
	if s.stopped.Load() {
		return nil
	}
	select {
	case <-s.consumeContext().Closed():
		s.recreate()
		return fmt.Errorf("consumer %s on %s stopped consuming; restarting it", s.cfg.Durable, s.cfg.Stream)
	default:
	}
	_, err := s.b.JS.Consumer(ctx, s.cfg.Stream, s.cfg.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		s.recreate()
		return fmt.Errorf("consumer %s on %s is missing; re-creating it", s.cfg.Durable, s.cfg.Stream)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("consumer %s: stream %s is missing", s.cfg.Durable, s.cfg.Stream)
	case err != nil:
		return fmt.Errorf("consumer %s on %s does not answer: %w", s.cfg.Durable, s.cfg.Stream, err)
	}
	return nil
}

// recreate creates the durable consumer again, once at a time, retrying
// while the server is unavailable, until it exists or the subscription
// stops. A consumer re-created with its old configuration starts over at
// its deliver policy: what it had acknowledged is delivered again, which
// every Herald handler tolerates (ids and ledgers make them idempotent).
func (s *Subscription) recreate() {
	if s.stopped.Load() || !s.recreating.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.recreating.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cons, err := Retry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
			if s.stopped.Load() {
				return nil, errors.New("stopped")
			}
			return s.b.JS.CreateOrUpdateConsumer(ctx, s.cfg.Stream, s.jcfg)
		})
		if err != nil {
			s.b.log.Error("could not re-create a missing consumer", "consumer", s.cfg.Durable, "stream", s.cfg.Stream, "error", err)
			return
		}
		// The client stops consuming a consumer the server deleted: consume
		// the new one, unless a Stop came first.
		s.ccMu.Lock()
		defer s.ccMu.Unlock()
		select {
		case <-s.cc.Closed():
			if s.stopped.Load() {
				return
			}
			cc, err := s.consumeWith(cons)
			if err != nil {
				s.b.log.Error("could not consume a re-created consumer", "consumer", s.cfg.Durable, "error", err)
				return
			}
			s.cc = cc
		default:
		}
		s.b.log.Warn("re-created a missing consumer", "consumer", s.cfg.Durable, "stream", s.cfg.Stream)
	}()
}

// Stop stops fetching, lets the handlers finish what was already delivered,
// and returns once every outcome (ack, nak, dead letter) has been sent, or
// ctx ends, in which case handlers are cancelled and the server will
// redeliver what was not acknowledged.
func (s *Subscription) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.ccMu.Lock()
		s.stopped.Store(true)
		cc := s.cc
		s.ccMu.Unlock()
		s.b.untrack(s)
		if !s.b.NC.IsConnected() {
			// Nothing can be acknowledged and the drain cannot complete
			// while the server is unreachable: give up what is held, the
			// server redelivers it.
			s.stopNow()
			cc.Stop()
			err = fmt.Errorf("consumer %s: stopped without draining: nats connection is %s", s.cfg.Durable, s.b.NC.Status())
			return
		}
		cc.Drain()
		select {
		case <-cc.Closed():
			// No delivery callback runs any more: the queue can be closed,
			// and the workers finish what it holds.
			close(s.work)
		case <-ctx.Done():
			err = fmt.Errorf("consumer %s: drain: %w", s.cfg.Durable, ctx.Err())
			// Out of time (or the server is gone and the drain cannot
			// complete): stop delivering and let the workers go; a callback
			// still running sees abort and returns.
			s.stopNow()
			cc.Stop()
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			// Handlers see their context cancelled; what they have not
			// acknowledged is redelivered. Do not wait for one that ignores it.
			s.stopNow()
			err = errors.Join(err, fmt.Errorf("consumer %s: handlers still running: %w", s.cfg.Durable, ctx.Err()))
		}
		s.cancel()
	})
	return err
}

// stopNow makes workers and the delivery callback give up what they hold.
func (s *Subscription) stopNow() {
	s.aborted.Do(func() { close(s.abort) })
	s.cancel()
}

// processor runs one message through decode, handler and outcome.
type processor struct {
	b       *Bus
	cfg     *ConsumerConfig
	h       Handler
	ctx     context.Context
	tm      map[event.Type]*typeMetrics // read-only after construction
	unknown *typeMetrics
}

func (p *processor) process(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to redeliver or dead-letter.
		p.b.log.Error("consumer got a message without JetStream metadata", "consumer", p.cfg.Durable, "error", err)
		_ = m.Term()
		return
	}
	e, reason, err := p.b.Decode(m)
	if err != nil {
		tm, ok := p.unknown, false
		if e != nil {
			tm, ok = p.tm[e.Type]
		}
		if !ok {
			tm = p.unknown
		}
		p.deadLetter(m, meta, tm, reason, err)
		return
	}
	tm, ok := p.tm[e.Type]
	if !ok {
		// Decode checked the subject against the type, and the subject
		// passed the filter: not reached unless the two disagree.
		tm = p.unknown
	}
	e.Stream, e.Sequence = meta.Stream, meta.Sequence.Stream
	delivered := int(meta.NumDelivered)
	if delivered > p.cfg.MaxDeliver {
		p.deadLetter(m, meta, tm, ReasonExhausted,
			fmt.Errorf("delivered %d times (ack wait %s expired)", delivered, p.cfg.AckWait))
		return
	}
	start := time.Now()
	err = p.call(e)
	tm.handlerTime.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		if aerr := m.Ack(); aerr != nil {
			p.b.log.Warn("ack failed; the event will be redelivered", "consumer", p.cfg.Durable, "seq", e.Sequence, "error", aerr)
		}
		tm.acked.Inc()
	case IsPermanent(err):
		p.deadLetter(m, meta, tm, ReasonHandler, err)
	case delivered >= p.cfg.MaxDeliver:
		p.deadLetter(m, meta, tm, ReasonExhausted, fmt.Errorf("handler failed %d times, last: %w", delivered, err))
	default:
		tm.retried.Inc()
		p.b.log.Warn("handler failed; will retry", "consumer", p.cfg.Durable, "event", e.Type,
			"requestId", e.RequestID, "seq", e.Sequence, "delivery", delivered, "error", err)
		_ = m.NakWithDelay(p.backoff(delivered))
	}
}

// Check tells whether a message is a valid event of the catalog, as Decode
// would, without decoding its data (for readers that only need to know).
// It returns the event's type ("" when the envelope is unreadable) and, when
// invalid, the dead-letter reason and the error.
func (b *Bus) Check(m jetstream.Msg) (event.Type, string, error) {
	e, err := event.FromMsg(m.Subject(), m.Headers(), m.Data())
	if err != nil {
		return "", ReasonEnvelope, err
	}
	if err := b.checkSubject(e); err != nil {
		return e.Type, classify(err), err
	}
	err = b.Catalog.Validate(e.Type, e.Raw)
	return e.Type, classify(err), err
}

// ErrSubjectMismatch reports a message whose subject and ce-type disagree.
var ErrSubjectMismatch = errors.New("subject does not match the event type")

// checkSubject refuses a message whose subject names another type (or log)
// than its ce-type: subjects are "<log>.<type>" or "<log>.<type>.<…>" (an
// incident transition, a ledger entry), and consumers filter and stream
// permissions are granted by subject, so a message that claims another type
// than its subject is forged or broken; it is never handled as either.
func (b *Bus) checkSubject(e *event.Event) error {
	d, err := b.Catalog.Def(e.Type)
	if err != nil {
		return err
	}
	log, rest, _ := strings.Cut(e.Subject, ".")
	typ, _, _ := strings.Cut(rest, ".")
	if log != string(d.Log) || typ != string(d.Type) {
		return fmt.Errorf("%w: subject %q carries ce-type %s, whose subjects are %s.%s[.…]", ErrSubjectMismatch, e.Subject, e.Type, d.Log, d.Type)
	}
	return nil
}

// Decode reads a message as an event of the catalog: its envelope, then its
// data validated against the type's schema. When it cannot, it says why, as
// the dead-letter reason (ReasonEnvelope, ReasonUnknownType, ReasonSubject,
// ReasonMalformed, ReasonSchema); the event is returned whenever its envelope could be read.
func (b *Bus) Decode(m jetstream.Msg) (*event.Event, string, error) {
	e, err := event.FromMsg(m.Subject(), m.Headers(), m.Data())
	if err != nil {
		return nil, ReasonEnvelope, err
	}
	if err := b.checkSubject(e); err != nil {
		return e, classify(err), err
	}
	if err := b.Catalog.Decode(e); err != nil {
		return e, classify(err), err
	}
	return e, "", nil
}

// classify names the dead-letter reason of a decoding error ("" for nil).
func classify(err error) string {
	var se *event.SchemaError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, event.ErrUnknownType):
		return ReasonUnknownType
	case errors.Is(err, ErrSubjectMismatch):
		return ReasonSubject
	case errors.As(err, &se):
		return ReasonSchema
	}
	return ReasonMalformed
}

// call runs the handler, turning a panic into an error so that one bad event
// cannot crash the process in a loop: it is retried, then dead-lettered.
func (p *processor) call(e *event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.b.log.Error("handler panicked", "consumer", p.cfg.Durable, "event", e.Type, "seq", e.Sequence,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return p.h(p.ctx, e)
}

func (p *processor) backoff(delivered int) time.Duration {
	i := min(delivered-1, len(p.cfg.Backoff)-1)
	return p.cfg.Backoff[max(i, 0)]
}

func (p *processor) deadLetter(m jetstream.Msg, meta *jetstream.MsgMetadata, tm *typeMetrics, reason string, cause error) {
	if err := p.b.DeadLetter(p.ctx, m, meta, p.cfg.Durable, reason, cause); err != nil {
		// The DLQ is unavailable: keep the message (redeliver later) rather than lose it.
		p.b.log.Error("dead-letter failed; will retry", "consumer", p.cfg.Durable, "seq", meta.Sequence.Stream, "error", err)
		tm.retried.Inc()
		_ = m.NakWithDelay(p.backoff(int(meta.NumDelivered)))
		return
	}
	tm.deadLettered(reason).Inc()
	tm.dlq.Inc()
	p.b.log.Warn("event dead-lettered", "consumer", p.cfg.Durable, "stream", meta.Stream,
		"seq", meta.Sequence.Stream, "reason", reason, "error", cause)
	_ = m.TermWithReason(reason)
}

// typeMetrics caches one consumer's per-type metric children: the hot path
// then does no label lookups.
type typeMetrics struct {
	m           *Metrics
	consumer    string
	typ         string
	acked       counter
	retried     counter
	dlq         counter
	handlerTime observer
}

type counter interface{ Inc() }
type observer interface{ Observe(float64) }

func newTypeMetrics(m *Metrics, consumer, typ string) *typeMetrics {
	return &typeMetrics{
		m: m, consumer: consumer, typ: typ,
		acked:       m.Consumed.WithLabelValues(consumer, typ, "acked"),
		retried:     m.Consumed.WithLabelValues(consumer, typ, "retried"),
		dlq:         m.Consumed.WithLabelValues(consumer, typ, "dead_lettered"),
		handlerTime: m.HandlerTime.WithLabelValues(consumer, typ),
	}
}

// newUnknownMetrics are the metrics of messages that are not one of the
// types the consumer receives: they are dead-lettered (or retried while the
// DLQ is unavailable), never handled, so the acked counter and the handler
// histogram are created only if that ever changes.
func newUnknownMetrics(m *Metrics, consumer string) *typeMetrics {
	return &typeMetrics{
		m: m, consumer: consumer, typ: unknownType,
		acked:   lazyCounter(func() { m.Consumed.WithLabelValues(consumer, unknownType, "acked").Inc() }),
		retried: m.Consumed.WithLabelValues(consumer, unknownType, "retried"),
		dlq:     m.Consumed.WithLabelValues(consumer, unknownType, "dead_lettered"),
		handlerTime: lazyObserver(func(v float64) {
			m.HandlerTime.WithLabelValues(consumer, unknownType).Observe(v)
		}),
	}
}

type lazyCounter func()

func (c lazyCounter) Inc() { c() }

type lazyObserver func(float64)

func (o lazyObserver) Observe(v float64) { o(v) }

func (t *typeMetrics) deadLettered(reason string) counter {
	return t.m.DeadLettered.WithLabelValues(t.consumer, t.typ, reason)
}
