package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// amqpRig is the platform, a fake Fast2SMS, a RabbitMQ vhost with the
// producer's exchanges, and a bridge process of its own on the platform's
// NATS (bridge role) and HTTP API.
type amqpRig struct {
	platform, bridge *apptest.App
	f2s              *heraldtest.Fast2SMS
	rabbit           *heraldtest.RabbitMQ
	ch               *amqp.Channel
	cfg              string
}

const (
	exchange    = "sms"
	deadLetters = "sms.dead"
	outcomesX   = "sms.outcomes"
)

func platformConfig(f2s *heraldtest.Fast2SMS) string { return heraldtest.OTPPlatform(f2s, "dlt_only") }

func startAMQPRig(t testing.TB) *amqpRig { return startAMQPRigWith(t, 4) }

// startAMQPRigWith runs the bridge with concurrency handlers.
func startAMQPRigWith(t testing.TB, concurrency int) *amqpRig {
	t.Helper()
	r := &amqpRig{f2s: heraldtest.NewFast2SMS(t), rabbit: rabbit.Node(t).VHost(t)}
	t.Setenv("FAST2SMS_API_KEY", r.f2s.APIKey)
	pc := platformConfig(r.f2s)
	r.platform = apptest.StartApp(t, apptest.WithConfig(pc))
	r.cfg = pc + fmt.Sprintf(`
bridge:
  herald: {url: %q}
  amqp:
    - name: billing
      url: %q
      exchange: %s
      bindingKey: "otp.#"
      deadLetterExchange: %s
      outcomeExchange: %s
      concurrency: %d
      retry: {initial: 20ms, max: 200ms, maxRetries: 3}
`, r.platform.URL, r.rabbit.URL, exchange, deadLetters, outcomesX, concurrency)
	r.bridge = r.startBridge(t)
	r.ch = r.rabbit.Channel(t)
	return r
}

func (r *amqpRig) startBridge(t testing.TB, opts ...apptest.AppOption) *apptest.App {
	return apptest.StartApp(t, append([]apptest.AppOption{apptest.WithTargets(app.Bridge), apptest.WithConfig(r.cfg),
		apptest.WithNATS(r.platform.NATSURL), apptest.WithNATSCredsDir(bus.CredsDir(r.platform.DataDir))}, opts...)...)
}

// queue declares a test queue bound to exchange with key and consumes it.
func (r *amqpRig) queue(t testing.TB, exchange, key string) (string, <-chan amqp.Delivery) {
	t.Helper()
	q, err := r.ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if exchange != "" {
		if err := r.ch.QueueBind(q.Name, key, exchange, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	d, err := r.ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Name, d
}

func (r *amqpRig) publish(t testing.TB, key string, p amqp.Publishing) {
	t.Helper()
	if err := r.ch.PublishWithContext(context.Background(), exchange, key, false, false, p); err != nil {
		t.Fatal(err)
	}
}

func sendRequest(id, phone, replyTo string) amqp.Publishing {
	return amqp.Publishing{MessageId: id, ReplyTo: replyTo, CorrelationId: "corr-" + id, ContentType: "application/json",
		Body: fmt.Appendf(nil, `{"app":"bank","phone":%q}`, phone)}
}

type outcome struct {
	IdempotencyKey, RequestID, Status, Error, Detail, App string
	correlation                                           string
}

func next(t *testing.T, d <-chan amqp.Delivery, what string) amqp.Delivery {
	t.Helper()
	select {
	case m := <-d:
		return m
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s within 30s", what)
	}
	panic("unreachable")
}

func readOutcome(t *testing.T, d <-chan amqp.Delivery) outcome {
	t.Helper()
	m := next(t, d, "outcome")
	var o outcome
	if err := json.Unmarshal(m.Body, &o); err != nil {
		t.Fatalf("outcome %s: %v", m.Body, err)
	}
	o.correlation = m.CorrelationId
	return o
}

func phone(i int) string { return fmt.Sprintf("+9198%08d", i) }

// TestSendRequestsOverAnExchangeSendOneSMSEachAndAnswerEach: requests on
// the producer's exchange are sends, each SMS once at the provider, each
// outcome back on the request's reply-to (with its correlation id) or, with
// none, on the outcome exchange.
func TestSendRequestsOverAnExchangeSendOneSMSEachAndAnswerEach(t *testing.T) {
	r := startAMQPRig(t)
	replyTo, replies := r.queue(t, "", "")
	_, published := r.queue(t, outcomesX, "otp.outcome.#")
	const n = 12
	for i := range n {
		r.publish(t, "otp.send.bank", sendRequest(fmt.Sprintf("req-%d", i), phone(i), replyTo))
	}
	r.publish(t, "otp.send.bank", sendRequest("req-no-reply", phone(99), ""))

	got := map[string]outcome{}
	for range n {
		o := readOutcome(t, replies)
		got[o.IdempotencyKey] = o
	}
	for i := range n {
		id := fmt.Sprintf("req-%d", i)
		o := got[id]
		if o.Status != "sent" || o.RequestID == "" || o.correlation != "corr-"+id || o.App != "bank" {
			t.Errorf("%s: outcome %+v, want sent with correlation corr-%s", id, o, id)
		}
	}
	if o := readOutcome(t, published); o.IdempotencyKey != "req-no-reply" || o.Status != "sent" {
		t.Errorf("on the outcome exchange: %+v", o)
	}
	perPhone := map[string]int{}
	for _, req := range r.f2s.Requests() {
		perPhone[req.Numbers]++
	}
	if len(perPhone) != n+1 {
		t.Errorf("%d numbers got an SMS, want %d", len(perPhone), n+1)
	}
	for p, c := range perPhone {
		if c != 1 {
			t.Errorf("%s got %d SMS", p, c)
		}
	}
	// (counted once the outcome is confirmed: a moment after it arrives)
	heraldtest.Eventually(t, 10*time.Second, "every send counted", func() bool {
		return r.bridge.Metric(t, `herald_bridge_messages_total{bridge="billing",kind="otp_send",result="sent"}`) == n+1
	})
}

// TestARedeliveredOrRepeatedSendRequestSendsNoSecondSMS: the same message
// id published twice (a producer's retry), and a request in hand when the
// broker drops the bridge's connection (RabbitMQ delivers it again, to the
// reconnected bridge, while the first send still waits for the provider),
// each send one SMS.
func TestARedeliveredOrRepeatedSendRequestSendsNoSecondSMS(t *testing.T) {
	r := startAMQPRig(t)
	replyTo, replies := r.queue(t, "", "")

	r.publish(t, "otp.send.bank", sendRequest("twice", phone(1), replyTo))
	first := readOutcome(t, replies)
	r.publish(t, "otp.send.bank", sendRequest("twice", phone(1), replyTo))
	second := readOutcome(t, replies)
	if first.Status != "sent" || second.RequestID != first.RequestID {
		t.Errorf("a repeated message id: outcomes %+v then %+v, want the same send", first, second)
	}
	// A producer that cannot set the message id puts the key in a header.
	byHeader := sendRequest("", phone(3), replyTo)
	byHeader.Headers = amqp.Table{"Idempotency-Key": "order-3"}
	r.publish(t, "otp.send.bank", byHeader)
	first = readOutcome(t, replies)
	r.publish(t, "otp.send.bank", byHeader)
	second = readOutcome(t, replies)
	if first.Status != "sent" || first.IdempotencyKey != "order-3" || second.RequestID != first.RequestID {
		t.Errorf("a repeated Idempotency-Key header: outcomes %+v then %+v, want the same send", first, second)
	}

	hold := r.f2s.HoldNext()
	r.publish(t, "otp.send.bank", sendRequest("in-hand", phone(2), replyTo))
	<-hold.Arrived
	r.rabbit.CloseConnections(t) // the bridge's and the test's own
	r.ch = r.rabbit.Channel(t)
	heraldtest.Eventually(t, 30*time.Second, "the request delivered again", func() bool {
		return r.bridge.Metric(t, `herald_bridge_retries_total{bridge="billing"}`) > 0
	})
	hold.Release()
	heraldtest.Eventually(t, 30*time.Second, "the in-hand send answered", func() bool {
		return r.bridge.Metric(t, `herald_bridge_messages_total{bridge="billing",kind="otp_send",result="sent"}`) >= 5
	})
	perPhone := map[string]int{}
	for _, req := range r.f2s.Requests() {
		perPhone[req.Numbers]++
	}
	for i := 1; i <= 3; i++ {
		p := phone(i)
		if c := perPhone[p] + perPhone[strings.TrimPrefix(p, "+91")]; c != 1 {
			t.Errorf("%s got %d SMS, want 1", p, c)
		}
	}
}

// TestWhatHeraldRefusesGoesToTheDeadLetterExchangeWithTheReason: each
// refused message is on the producer's dead-letter exchange, on its own
// routing key, body intact, with the reason; a refused send request is also
// answered rejected; nothing is retried, and what follows still flows.
func TestWhatHeraldRefusesGoesToTheDeadLetterExchangeWithTheReason(t *testing.T) {
	r := startAMQPRig(t)
	replyTo, replies := r.queue(t, "", "")
	_, dead := r.queue(t, deadLetters, "#")
	cases := []struct {
		name   string
		msg    amqp.Publishing
		reason string
	}{
		{"not JSON", amqp.Publishing{MessageId: "m1", ReplyTo: replyTo, Body: []byte("{nope")}, "invalid_json"},
		{"an unknown field", amqp.Publishing{MessageId: "m2", ReplyTo: replyTo, Body: []byte(`{"app":"bank","phone":"+919800000001","pin":1}`)}, "invalid_json"},
		{"a bad phone", sendRequest("m3", "12", replyTo), "invalid_phone"},
		{"an unknown app", amqp.Publishing{MessageId: "m4", ReplyTo: replyTo, Body: []byte(`{"app":"nope","phone":"+919800000001"}`)}, "unknown_app"},
		{"no message id", amqp.Publishing{ReplyTo: replyTo, Body: []byte(`{"app":"bank","phone":"+919800000001"}`)}, "missing_idempotency_key"},
		{"a Herald-owned event", amqp.Publishing{ContentType: "application/cloudevents+json",
			Body: []byte(`{"specversion":"1.0","id":"e1","type":"otp_verified","source":"billing","data":{"app":"bank","attempts":1}}`)}, "forbidden_event_type"},
		{"an event too large for the log", amqp.Publishing{ContentType: "application/cloudevents+json",
			Body: []byte(`{"specversion":"1.0","id":"e3","type":"integration_call_completed","source":"billing","data":{"integration":"stripe","operation":"` +
				strings.Repeat("x", 1<<20) + `","statusCode":200,"latencyMs":1}}`)}, "body_too_large"},
		{"an event against its schema", amqp.Publishing{ContentType: "application/cloudevents+json",
			Body: []byte(`{"specversion":"1.0","id":"e2","type":"integration_call_completed","source":"billing","data":{"integration":"stripe"}}`)}, "schema_violation"},
	}
	for i, c := range cases {
		key := fmt.Sprintf("otp.case.%d", i)
		r.publish(t, key, c.msg)
		m := next(t, dead, "dead letter of "+c.name)
		reason, _ := m.Headers["reason_poisoned"].(string)
		if !strings.Contains(reason, c.reason) || m.RoutingKey != key || string(m.Body) != string(c.msg.Body) || m.MessageId != c.msg.MessageId {
			t.Errorf("%s: dead letter key %s id %q reason %q body %s; want key %s, reason %s, the body intact", c.name, m.RoutingKey, m.MessageId, reason, m.Body, key, c.reason)
		}
		if c.msg.ReplyTo != "" {
			if o := readOutcome(t, replies); o.Status != "rejected" || o.Error != c.reason {
				t.Errorf("%s: outcome %+v, want rejected %s", c.name, o, c.reason)
			}
		}
	}
	r.publish(t, "otp.send.bank", sendRequest("after", phone(7), replyTo))
	if o := readOutcome(t, replies); o.IdempotencyKey != "after" || o.Status != "sent" {
		t.Errorf("the request after the refused ones: %+v", o)
	}
	if v := r.bridge.Metric(t, `herald_bridge_retries_total{bridge="billing"}`); v != 0 {
		t.Errorf("%v retries of refused messages, want none", v)
	}
}

// TestProducerEventsOverAMQPReachTheLogOnce: CloudEvents in binary mode
// (cloudEvents: application properties, the AMQP binding) and structured
// mode are stored with their attributes (AMQP values are native: a space,
// a ☃ or a % is itself, not percent-encoded as in the NATS and HTTP
// bindings); the same event again is not stored twice.
func TestProducerEventsOverAMQPReachTheLogOnce(t *testing.T) {
	r := startAMQPRig(t)
	data := `{"integration":"stripe","operation":"charges.create","statusCode":200,"latencyMs":12}`
	binary := amqp.Publishing{ContentType: "application/json", Body: []byte(data), Headers: amqp.Table{
		"cloudEvents:specversion": "1.0", "cloudEvents:id": "bin-1", "cloudEvents:type": "integration_call_completed",
		"cloudEvents:source": "urn:billing:team", "cloudEvents_requestid": "order 7 ☃ 100%"}}
	structured := amqp.Publishing{ContentType: "application/cloudevents+json", Body: []byte(
		`{"specversion":"1.0","id":"str-1","type":"integration_call_completed","source":"billing","data":` + data + `}`)}
	for _, p := range []amqp.Publishing{binary, structured, binary} {
		r.publish(t, "otp.events", p)
	}
	var fwd, dup float64
	heraldtest.Eventually(t, 30*time.Second, "both events stored, the repeat seen", func() bool {
		fwd = r.bridge.Metric(t, `herald_bridge_messages_total{bridge="billing",kind="event",result="forwarded"}`)
		dup = r.bridge.Metric(t, `herald_bridge_messages_total{bridge="billing",kind="event",result="duplicate"}`)
		return fwd+dup == 3
	})
	if fwd != 2 || dup != 1 {
		t.Errorf("%v messages forwarded and %v duplicates, want 2 and 1", fwd, dup)
	}
	var ids []string
	for _, e := range heraldtest.Events(t, r.platform.Bus, streams.Events, "events.integration_call_completed") {
		ids = append(ids, e.ID)
		if e.ID == "bin-1" && (e.Source != "urn:billing:team" || e.RequestID != "order 7 ☃ 100%") {
			t.Errorf("binary mode: source %q request id %q", e.Source, e.RequestID)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"bin-1", "str-1"}) {
		t.Errorf("EVENTS holds %v, want bin-1 and str-1 once each", ids)
	}
}

// TestTheBridgeSendsWithItsOwnKeyAndOnlyForTheAppsItIsScopedTo: on a
// platform with API keys, the bridge's sends carry its producer key
// (HERALD_BRIDGE_KEY); a request for an app the key is not scoped to is
// refused as over HTTP, to the dead-letter exchange, and sends nothing.
func TestTheBridgeSendsWithItsOwnKeyAndOnlyForTheAppsItIsScopedTo(t *testing.T) {
	f2s := heraldtest.NewFast2SMS(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	key := heraldtest.ProducerKey(t, "billing-bridge", []string{"bank"}, nil)
	t.Setenv("HERALD_BRIDGE_KEY", key.Secret)
	shop := strings.Replace(strings.TrimPrefix(heraldtest.BankApp("dlt_only"), "apps:\n"), "  bank:", "  shop:", 1)
	pc := platformConfig(f2s) + shop + heraldtest.KeysYAML(t, key)
	r := &amqpRig{f2s: f2s, rabbit: rabbit.Node(t).VHost(t)}
	r.platform = apptest.StartApp(t, apptest.WithConfig(pc))
	r.cfg = pc + fmt.Sprintf(`
bridge:
  herald: {url: %q}
  amqp: [{name: billing, url: %q, exchange: %s, deadLetterExchange: %s}]
`, r.platform.URL, r.rabbit.URL, exchange, deadLetters)
	r.bridge = r.startBridge(t)
	r.ch = r.rabbit.Channel(t)
	replyTo, replies := r.queue(t, "", "")
	_, dead := r.queue(t, deadLetters, "#")

	r.publish(t, "otp.send", sendRequest("for-bank", phone(1), replyTo))
	if o := readOutcome(t, replies); o.Status != "sent" {
		t.Errorf("a send for bank, which the key may send for: %+v", o)
	}
	other := amqp.Publishing{MessageId: "for-shop", ReplyTo: replyTo, Body: fmt.Appendf(nil, `{"app":"shop","phone":%q}`, phone(2))}
	r.publish(t, "otp.send", other)
	if o := readOutcome(t, replies); o.Status != "rejected" || o.Error != "forbidden" {
		t.Errorf("a send for shop: %+v, want rejected forbidden", o)
	}
	if m := next(t, dead, "the refused send"); m.MessageId != "for-shop" {
		t.Errorf("dead letter %s", m.MessageId)
	}
	if n := len(f2s.Requests()); n != 1 {
		t.Errorf("%d SMS, want 1", n)
	}
}

// TestTwoBridgesOnOneQueueShareItsRequestsAndLogNoPhoneNumber: bridge
// processes on one queue are competing consumers: each request is handled
// by one of them, once, and both take a share. Neither logs a phone
// number, whatever became of the request.
func TestTwoBridgesOnOneQueueShareItsRequestsAndLogNoPhoneNumber(t *testing.T) {
	r := startAMQPRig(t)
	var logs [2]heraldtest.Buffer
	bridges := []*apptest.App{r.bridge}
	r.bridge.Stop(t) // (restarted below with its log captured)
	bridges[0] = r.startBridge(t, apptest.WithLogOutput(&logs[0]))
	bridges = append(bridges, r.startBridge(t, apptest.WithLogOutput(&logs[1])))
	replyTo, replies := r.queue(t, "", "")
	const n = 40
	var phones []string
	for i := range n {
		p := phone(1000 + i)
		if i == n-1 {
			p = "+9198123" // too short: refused, its detail about the number
		}
		phones = append(phones, p)
		r.publish(t, "otp.send.bank", sendRequest(fmt.Sprintf("req-%d", i), p, replyTo))
	}
	seen := map[string]int{}
	for range n {
		seen[readOutcome(t, replies).IdempotencyKey]++
	}
	if len(seen) != n {
		t.Errorf("%d requests answered, want %d", len(seen), n)
	}
	var shares []float64
	heraldtest.Eventually(t, 10*time.Second, "every request counted", func() bool {
		shares = nil
		for _, b := range bridges {
			shares = append(shares, b.Metric(t, `herald_bridge_messages_total{bridge="billing",kind="otp_send",result="sent"}`)+
				b.Metric(t, `herald_bridge_messages_total{bridge="billing",kind="otp_send",result="rejected"}`))
		}
		return shares[0]+shares[1] == n
	})
	if shares[0] == 0 || shares[1] == 0 {
		t.Errorf("the bridges handled %v requests, want both a share of %d", shares, n)
	}
	if got := len(r.f2s.Requests()); got != n-1 {
		t.Errorf("%d SMS, want %d", got, n-1)
	}
	if !strings.Contains(logs[0].String()+logs[1].String(), "send request rejected") {
		t.Error("the refused request was not logged")
	}
	for i := range logs {
		text := logs[i].String()
		for _, p := range phones {
			if strings.Contains(text, strings.TrimPrefix(p, "+91")) {
				t.Errorf("bridge %d logged the number %s", i, p)
			}
		}
	}
}
