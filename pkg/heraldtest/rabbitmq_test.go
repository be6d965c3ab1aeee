package heraldtest

import (
	"context"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// sharedRabbit is the node the package's vhost tests share (see
// SharedRabbitMQ); it starts only if one of them runs.
var sharedRabbit SharedRabbitMQ

func TestMain(m *testing.M) {
	code := m.Run()
	sharedRabbit.Stop()
	os.Exit(code)
}

// Two nodes at once (as parallel tests in one package run them) each carry
// their own message: no shared port, node name or cookie.
func TestStartRabbitMQ(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, StartRabbitMQ(t), "hello from "+name)
		})
	}
}

// Two tests on the shared node, each in its own vhost, use the same queue
// name and see only their own message.
func TestSharedRabbitMQVHosts(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, sharedRabbit.Node(t).VHost(t), "hello from "+name)
		})
	}
}

// roundTrip publishes body through a queue and consumes it back.
func roundTrip(t *testing.T, r *RabbitMQ, body string) {
	t.Helper()
	ch := r.Channel(t)
	q, err := ch.QueueDeclare("herald-test", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-deliveries:
		if string(m.Body) != body {
			t.Fatalf("got %q, want %q", m.Body, body)
		}
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
}
