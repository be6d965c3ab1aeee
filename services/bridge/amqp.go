package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPConfig is one RabbitMQ bridge: a queue bound to a producer's
// exchange, carrying OTP send requests and producer events.
type AMQPConfig struct {
	Name string `yaml:"name"`
	// URL is amqp://user@host:5672/vhost; with its password it comes from
	// HERALD_BRIDGE_<NAME>_URL or URLFile instead.
	URL     string `yaml:"url"`
	URLFile string `yaml:"urlFile"`
	// Exchange is the producer's exchange (used as it is if it exists,
	// else declared: durable, topic); Queue (default herald.<name>,
	// durable) is bound to it with BindingKey (default #).
	Exchange   string `yaml:"exchange"`
	Queue      string `yaml:"queue"`
	BindingKey string `yaml:"bindingKey"`
	// DeadLetterExchange receives what Herald refuses, with the reason, on
	// the message's own routing key (declared like Exchange).
	DeadLetterExchange string `yaml:"deadLetterExchange"`
	// OutcomeExchange receives the outcome of each send request that has
	// no reply-to, on routing key otp.outcome.<app>; empty: those outcomes
	// are not published.
	OutcomeExchange string `yaml:"outcomeExchange"`
	// Concurrency is how many messages one bridge process handles at a
	// time (default 8), each on its own channel with a prefetch of one, so
	// that processes on one queue share its messages fairly.
	Concurrency int         `yaml:"concurrency"`
	Retry       RetryConfig `yaml:"retry"`
}

func (c *AMQPConfig) check() error {
	u, err := secret(c.Name, "URL", c.URL, c.URLFile)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if p, err := url.Parse(u); err != nil || (p.Scheme != "amqp" && p.Scheme != "amqps") || p.Host == "" {
		return errors.New("url: not an amqp:// or amqps:// URL") // (not quoted: it may hold a password)
	}
	c.URL = u
	if c.Exchange == "" {
		return errors.New("exchange: the producer's exchange is required")
	}
	if c.DeadLetterExchange == "" {
		return errors.New("deadLetterExchange: required: what Herald refuses goes there, with the reason")
	}
	if c.DeadLetterExchange == c.Exchange {
		return errors.New("deadLetterExchange: must not be the exchange the bridge consumes")
	}
	if c.Queue == "" {
		c.Queue = "herald." + c.Name
	}
	if c.BindingKey == "" {
		c.BindingKey = "#"
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		return fmt.Errorf("concurrency: %d is not between 1 and 256", c.Concurrency)
	}
	c.Retry.defaults()
	return nil
}

// amqpBridge is one AMQP source's handlers and publishers.
type amqpBridge struct {
	cfg  AMQPConfig
	d    *deps
	conn *wamqp.ConnectionWrapper
	// replies publishes on the default exchange, to a reply-to queue;
	// outcomes and dead letters to their exchanges.
	replies, outcomes, dead *wamqp.Publisher
}

// addAMQP connects to the broker, declares the queue and its binding and
// puts Concurrency handlers of it on the router.
func addAMQP(r *message.Router, c AMQPConfig, d *deps) (source, error) {
	conn, err := wamqp.NewConnection(wamqp.ConnectionConfig{AmqpURI: c.URL, Reconnect: wamqp.DefaultReconnectConfig()}, d.wlog)
	if err != nil {
		return source{}, fmt.Errorf("connecting to RabbitMQ: %w", redactURL(err, c.URL))
	}
	b := &amqpBridge{cfg: c, d: d, conn: conn}
	if err := b.publishers(); err != nil {
		return source{}, errors.Join(err, conn.Close())
	}
	sub, err := wamqp.NewSubscriberWithConnection(b.config(c.Exchange, func(string) string { return c.BindingKey }), d.wlog, conn)
	if err != nil {
		return source{}, errors.Join(fmt.Errorf("subscriber: %w", err), conn.Close())
	}
	if err := sub.SubscribeInitialize(c.Queue); err != nil {
		return source{}, errors.Join(fmt.Errorf("declaring queue %s on exchange %s: %w", c.Queue, c.Exchange, err), conn.Close())
	}
	if err := b.declare(c.DeadLetterExchange, c.OutcomeExchange); err != nil {
		return source{}, errors.Join(err, sub.Close(), conn.Close())
	}
	mw, err := d.middleware(c.Name, deadLetters{b.dead}, c.DeadLetterExchange, c.Retry)
	if err != nil {
		return source{}, errors.Join(err, conn.Close())
	}
	for i := range c.Concurrency {
		h := r.AddConsumerHandler(fmt.Sprintf("bridge-%s-%d", c.Name, i), c.Queue, sub, b.handle)
		h.AddMiddleware(mw...)
	}
	ready := func(context.Context) error {
		if !conn.IsConnected() {
			return errors.New("not connected to RabbitMQ")
		}
		return nil
	}
	closeAll := func() error {
		errs := []error{sub.Close(), b.replies.Close(), b.dead.Close()}
		if b.outcomes != nil {
			errs = append(errs, b.outcomes.Close())
		}
		return errors.Join(append(errs, conn.Close())...)
	}
	return source{name: c.Name, ready: ready, close: closeAll}, nil
}

// config is watermill's configuration for the bridge's queue (subscriber)
// or for publishing to exchange with the routing key the topic gives.
func (b *amqpBridge) config(exchange string, routingKey func(string) string) wamqp.Config {
	return wamqp.Config{
		Connection: wamqp.ConnectionConfig{AmqpURI: b.cfg.URL},
		Marshaler:  marshaler{},
		Exchange:   wamqp.ExchangeConfig{GenerateName: wamqp.GenerateExchangeNameConstant(exchange), Type: "topic", Durable: true},
		Queue:      wamqp.QueueConfig{GenerateName: wamqp.GenerateQueueNameConstant(b.cfg.Queue), Durable: true},
		QueueBind:  wamqp.QueueBindConfig{GenerateRoutingKey: routingKey},
		// Confirmed: an outcome or a dead letter is on the broker before the
		// request is acknowledged.
		Publish:         wamqp.PublishConfig{GenerateRoutingKey: routingKey, ConfirmDelivery: true, ChannelPoolSize: b.cfg.Concurrency},
		Consume:         wamqp.ConsumeConfig{Qos: wamqp.QosConfig{PrefetchCount: 1}},
		TopologyBuilder: existingOrTopic{conn: b.conn},
	}
}

// declare makes sure the exchanges the bridge publishes to exist before
// the first message, so that producers can bind to them at once.
func (b *amqpBridge) declare(exchanges ...string) error {
	ch, err := b.conn.Connection().Channel()
	if err != nil {
		return fmt.Errorf("opening a channel: %w", err)
	}
	defer ch.Close()
	tb := existingOrTopic{conn: b.conn}
	for _, x := range exchanges {
		if x == "" {
			continue
		}
		if err := tb.ExchangeDeclare(ch, x, b.config(x, nil)); err != nil {
			return fmt.Errorf("exchange %s: %w", x, err)
		}
	}
	return nil
}

func (b *amqpBridge) publishers() error {
	same := func(topic string) string { return topic }
	var err error
	if b.replies, err = wamqp.NewPublisherWithConnection(b.config("", same), b.d.wlog, b.conn); err != nil {
		return fmt.Errorf("reply publisher: %w", err)
	}
	if b.dead, err = wamqp.NewPublisherWithConnection(b.config(b.cfg.DeadLetterExchange, same), b.d.wlog, b.conn); err != nil {
		return fmt.Errorf("dead-letter publisher: %w", err)
	}
	if b.cfg.OutcomeExchange == "" {
		return nil // outcomes of sends without reply-to are not published
	}
	if b.outcomes, err = wamqp.NewPublisherWithConnection(b.config(b.cfg.OutcomeExchange, same), b.d.wlog, b.conn); err != nil {
		return fmt.Errorf("outcome publisher: %w", err)
	}
	return nil
}

// handle is one message: an event (CloudEvents, structured or binary) or
// an OTP send request.
func (b *amqpBridge) handle(msg *message.Message) error {
	start := time.Now()
	ins, isEvent, err := parseEvents(msg)
	if !isEvent {
		err = b.send(msg) // (the API refuses a body too large: 413)
		b.d.metrics.duration.WithLabelValues(b.cfg.Name, kindOTPSend).Observe(time.Since(start).Seconds())
		return err
	}
	if err == nil {
		err = checkSize(msg.Payload)
	}
	if err == nil {
		err = b.d.forward(msg.Context(), b.cfg.Name, ins)
	}
	if IsRejection(err) {
		b.d.metrics.messages.WithLabelValues(b.cfg.Name, kindEvent, resultRejected).Inc()
	}
	b.d.metrics.duration.WithLabelValues(b.cfg.Name, kindEvent).Observe(time.Since(start).Seconds())
	return err
}

// send is a send request: POST /v1/otp/send with the message id as the
// Idempotency-Key; its outcome is published back before the request is
// acknowledged. A request Herald refuses is answered rejected, then goes
// to the dead-letter exchange.
func (b *amqpBridge) send(msg *message.Message) error {
	key := msg.UUID
	var req SendRequest
	out, err := Outcome{IdempotencyKey: key, Status: StatusRejected}, decodeSend(msg.Payload, &req)
	if err == nil {
		out, err = b.d.intake.SendOTP(msg.Context(), key, req)
	}
	var rej *Rejection
	switch {
	case errors.As(err, &rej):
		out.Status, out.Error, out.Detail = StatusRejected, rej.Code, rej.Detail
	case err != nil:
		return err // may pass: retried; nothing is published yet
	}
	if perr := b.publishOutcome(msg, out); perr != nil {
		return fmt.Errorf("publishing the outcome: %w", perr)
	}
	b.d.metrics.messages.WithLabelValues(b.cfg.Name, kindOTPSend, result(out.Status)).Inc()
	if rej != nil {
		b.d.log.Info("send request rejected", "bridge", b.cfg.Name, "messageId", key, "error", rej.Code, "detail", rej.Detail)
	}
	return err
}

// result is an outcome status as the metric's result label.
func result(status string) string {
	switch status {
	case StatusSMSFailed, StatusRateLimited, StatusRejected:
		return status
	}
	return resultSent
}

// decodeSend reads a send request strictly, as the API does.
func decodeSend(body []byte, into *SendRequest) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return rejectf("invalid_json", "a send request is a JSON object {\"app\", \"phone\"[, \"mode\"]}: %v", err)
	}
	if dec.More() {
		return rejectf("invalid_json", "a send request is one JSON object")
	}
	return nil
}

// publishOutcome sends the outcome to the request's reply-to queue (with
// its correlation id), else to the outcome exchange on otp.outcome.<app>,
// else nowhere.
func (b *amqpBridge) publishOutcome(req *message.Message, out Outcome) error {
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	m := message.NewMessage(req.UUID, body)
	m.SetContext(req.Context())
	m.Metadata.Set(metaContentType, "application/json")
	m.Metadata.Set(metaType, "herald.otp.outcome")
	if c := req.Metadata.Get(metaCorrelationID); c != "" {
		m.Metadata.Set(metaCorrelationID, c)
	}
	if to := req.Metadata.Get(metaReplyTo); to != "" {
		return b.replies.Publish(to, m)
	}
	if b.outcomes == nil {
		return nil
	}
	app := out.App
	if app == "" {
		app = "unknown"
	}
	return b.outcomes.Publish("otp.outcome."+app, m)
}

// deadLetters publishes what poison hands it on the dead-letter exchange,
// on the message's own routing key (as RabbitMQ's own dead-lettering
// does), whatever the topic poison names.
type deadLetters struct{ pub *wamqp.Publisher }

func (p deadLetters) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := p.pub.Publish(m.Metadata.Get(metaRoutingKey), m); err != nil {
			return err
		}
	}
	return nil
}

func (p deadLetters) Close() error { return nil } // (the bridge closes the publisher)

// existingOrTopic uses an exchange that exists, whatever its type, and
// declares a missing one as a durable topic exchange.
type existingOrTopic struct {
	wamqp.DefaultTopologyBuilder
	conn *wamqp.ConnectionWrapper
}

func (t existingOrTopic) ExchangeDeclare(ch *amqp.Channel, name string, c wamqp.Config) error {
	// A passive declare of a missing exchange closes the channel it is
	// sent on: it is tried on a channel of its own.
	probe, err := t.conn.Connection().Channel()
	if err == nil {
		err = probe.ExchangeDeclarePassive(name, "", false, false, false, false, nil)
		if err == nil {
			return probe.Close()
		}
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		return err
	}
	return t.DefaultTopologyBuilder.ExchangeDeclare(ch, name, c)
}

func (t existingOrTopic) BuildTopology(ch *amqp.Channel, p wamqp.BuildTopologyParams, c wamqp.Config, log watermill.LoggerAdapter) error {
	if _, err := ch.QueueDeclare(p.QueueName, c.Queue.Durable, false, false, false, nil); err != nil {
		return fmt.Errorf("declaring queue %s: %w", p.QueueName, err)
	}
	if err := t.ExchangeDeclare(ch, p.ExchangeName, c); err != nil {
		return fmt.Errorf("exchange %s: %w", p.ExchangeName, err)
	}
	return ch.QueueBind(p.QueueName, p.RoutingKey, p.ExchangeName, false, nil)
}

// redactURL keeps a connection error from repeating the URL's password.
func redactURL(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr != nil || u.User == nil {
		return err
	}
	if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
		return errors.New(strings.ReplaceAll(err.Error(), p, "xxxxx"))
	}
	return err
}
