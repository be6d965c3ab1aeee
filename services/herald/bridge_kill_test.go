package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// A `herald serve --target bridge` process SIGKILLed while it relays a
// stream of send requests from RabbitMQ, then started again: every
// request is answered, no number gets a second SMS, and the queue ends
// empty. What the dead process held unacknowledged RabbitMQ delivers
// again; the message id, as the send's Idempotency-Key, makes the second
// delivery the first send's answer.
func TestABridgeSIGKILLedMidStreamAndRestartedLosesAndDoublesNothing(t *testing.T) {
	rabbit := heraldtest.StartRabbitMQ(t)
	f2s := heraldtest.NewFast2SMS(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	slow := make([]heraldtest.Fast2SMSReply, 200)
	for i := range slow {
		slow[i] = heraldtest.Fast2SMSReply{HTTPStatus: 200, Delay: 40 * time.Millisecond}
	}
	f2s.Script(slow...)
	platform := apptest.StartApp(t, apptest.WithConfig(heraldtest.OTPPlatform(f2s, "dlt_only")))
	cfgFile := filepath.Join(t.TempDir(), "herald.yaml")
	cfg := fmt.Sprintf(`
bridge:
  herald: {url: %q}
  amqp:
    - name: billing
      exchange: sms
      deadLetterExchange: sms.dead
      concurrency: 4
      retry: {initial: 20ms, max: 500ms}
`, platform.URL)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HERALD_BRIDGE_BILLING_URL", rabbit.URL) // the password stays out of the file
	serve := func() *serveProc {
		return startServe(t, t.TempDir(), "--target", "bridge", "--nats", platform.NATSURL,
			"--nats-creds-dir", bus.CredsDir(platform.DataDir), "--config", cfgFile)
	}
	first := serve()

	ch := rabbit.Channel(t)
	reply, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	replies, err := ch.Consume(reply.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 80
	for i := range n {
		p := amqp.Publishing{MessageId: fmt.Sprintf("req-%d", i), ReplyTo: reply.Name, ContentType: "application/json",
			Body: fmt.Appendf(nil, `{"app":"bank","phone":"+9198%08d"}`, i)}
		if err := ch.PublishWithContext(context.Background(), "sms", "otp.send", false, false, p); err != nil {
			t.Fatal(err)
		}
	}
	heraldtest.Eventually(t, 60*time.Second, "a quarter of the SMS sent", func() bool { return len(f2s.Requests()) >= n/4 })
	first.stop(t, syscall.SIGKILL)
	serve()

	answered := map[string]string{}
	deadline := time.After(90 * time.Second)
	for len(answered) < n {
		select {
		case m := <-replies:
			var o struct{ IdempotencyKey, Status string }
			if err := json.Unmarshal(m.Body, &o); err != nil {
				t.Fatalf("outcome %s: %v", m.Body, err)
			}
			answered[o.IdempotencyKey] = o.Status
		case <-deadline:
			t.Fatalf("%d of %d requests answered", len(answered), n)
		}
	}
	for id, status := range answered {
		if status != "sent" {
			t.Errorf("%s: %s, want sent", id, status)
		}
	}
	perPhone := map[string]int{}
	for _, r := range f2s.Requests() {
		perPhone[r.Numbers]++
	}
	for p, c := range perPhone {
		if c != 1 {
			t.Errorf("%s got %d SMS", p, c)
		}
	}
	if len(perPhone) != n {
		t.Errorf("%d numbers got an SMS, want %d", len(perPhone), n)
	}
	q, err := ch.QueueDeclarePassive("herald.billing", true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Errorf("the bridge's queue: %+v, %v; want it empty", q, err)
	}
}

// A `herald serve --target bridge` process forwarding an outbox SIGKILLed
// mid-stream, then started again: every committed row's event is in
// EVENTS once, in commit order. The position is committed in the
// subscriber's transaction after the events are stored; what the dead
// process forwarded without committing its position is read again and
// de-duplicated by the event ids.
func TestAnOutboxBridgeSIGKILLedMidStreamForwardsEveryRowOnceInOrder(t *testing.T) {
	pg := heraldtest.StartPostgres(t)
	platform := apptest.StartApp(t)
	cfgFile := filepath.Join(t.TempDir(), "herald.yaml")
	cfg := "bridge:\n  outbox: [{name: shop, batchSize: 1, pollInterval: 50ms}]\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HERALD_BRIDGE_SHOP_DSN", pg.DSN)
	serve := func() *serveProc {
		return startServe(t, t.TempDir(), "--target", "bridge", "--nats", platform.NATSURL,
			"--nats-creds-dir", bus.CredsDir(platform.DataDir), "--config", cfgFile)
	}
	// A first run creates the outbox; then the rows wait, all committed at
	// once, for the run that is killed.
	if code := serve().stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("herald serve exited %d", code)
	}
	db := pg.Conn(t)
	const n = 2000
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		payload := fmt.Sprintf(`{"specversion":"1.0","id":"row-%d","type":"integration_call_completed","source":"shop",
			"data":{"integration":"stripe","operation":"charges.create","statusCode":200,"latencyMs":%d}}`, i, i)
		if _, err := tx.Exec(ctx, `INSERT INTO herald_outbox (uuid, payload, metadata, transaction_id)
			VALUES ($1, $2, '{}', pg_current_xact_id())`, fmt.Sprintf("00000000-0000-0000-0000-%012d", i), payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	stored := func() []string {
		var ids []string
		for _, e := range heraldtest.Events(t, platform.Bus, streams.Events, "events.integration_call_completed") {
			ids = append(ids, e.ID)
		}
		return ids
	}
	killed := serve()
	heraldtest.Eventually(t, 60*time.Second, "a tenth of the rows forwarded", func() bool { return len(stored()) >= n/10 })
	killed.stop(t, syscall.SIGKILL)
	if at := len(stored()); at >= n {
		t.Fatalf("all %d rows were forwarded before the kill: nothing tested", at)
	}
	serve()
	heraldtest.Eventually(t, 60*time.Second, "every row forwarded", func() bool { return len(stored()) >= n })
	ids := stored()
	if len(ids) != n {
		t.Fatalf("%d events stored for %d rows", len(ids), n)
	}
	for i, id := range ids {
		if want := fmt.Sprintf("row-%d", i); id != want {
			t.Fatalf("event %d is %s, want %s: a row out of order, missing or twice", i, id, want)
		}
	}
}
