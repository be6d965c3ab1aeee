// Package bench measures Herald against raw JetStream in the same run, on the
// same server: the numbers docs/benchmarks.md reports. `herald bench` and the
// Go benchmarks both call it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// Result is one measured run.
type Result struct {
	Name    string
	N       int
	Elapsed time.Duration
	// CPU is the process's user+system time during the run: the embedded
	// server and the client together.
	CPU time.Duration
}

// CPUPerMsg is the CPU time the whole process spent per message.
func (r Result) CPUPerMsg() time.Duration { return r.CPU / time.Duration(max(r.N, 1)) }

// Rate is messages per second.
func (r Result) Rate() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// SampleEvent is the benchmark's event: an integration call, about 230 bytes
// of data and 330 of headers.
func SampleEvent(i int) *event.Event {
	return event.New("bench", event.IntegrationCallCompleted{
		// A successful call, so that no incident rule reacts to the load.
		Integration: "stripe", Operation: "charges.create " + strings.Repeat("x", 110), StatusCode: 200, LatencyMs: 812.5,
		Classification: "ok",
	}, event.WithRequestID(fmt.Sprintf("bench-%d", i)))
}

// RawPublish publishes n messages with PublishMsgAsync and WithMsgID, bodies
// and headers prepared beforehand (the same bytes a typed publish sends), and
// waits for every ack: JetStream's own cost, the reference.
func RawPublish(ctx context.Context, b *bus.Bus, n int) (Result, error) {
	msgs := make([]*nats.Msg, n)
	ids := make([]string, n)
	for i := range msgs {
		e := SampleEvent(i)
		if _, err := b.Encode(e); err != nil {
			return Result{}, err
		}
		msgs[i] = &nats.Msg{Subject: "events." + string(e.Type), Header: e.Header(), Data: e.Raw}
		ids[i] = e.ID
	}
	futures := make([]jetstream.PubAckFuture, 0, n)
	t := start()
	for i, m := range msgs {
		for {
			f, err := b.JS.PublishMsgAsync(m, jetstream.WithMsgID(ids[i]))
			if err == nil {
				futures = append(futures, f)
				break
			}
			if !stalled(err) {
				return Result{}, err
			}
		}
	}
	if err := waitAsync(ctx, b); err != nil {
		return Result{}, err
	}
	r := t.result("raw PublishAsync+MsgID", n)
	// Every ack resolved: a refused publish (a permission the connection
	// lacks) must fail the reference, not count as a message.
	for _, f := range futures {
		select {
		case err := <-f.Err():
			return Result{}, fmt.Errorf("raw publish: %w", err)
		default:
		}
	}
	return r, nil
}

// TypedPublish builds, validates and publishes n events through Herald's
// publisher (new id, JSON encoding, schema validation, headers, async with
// Nats-Msg-Id) and waits for every ack.
func TypedPublish(ctx context.Context, b *bus.Bus, n int) (Result, error) {
	t := start()
	for i := range n {
		e := SampleEvent(i)
		for {
			_, err := b.PublishAsync(e)
			if err == nil {
				break
			}
			if !stalled(err) {
				return Result{}, err
			}
		}
	}
	if err := waitAsync(ctx, b); err != nil {
		return Result{}, err
	}
	return t.result("typed publish (validate+dedup)", n), nil
}

// stalled reports nats.go's refusal of an asynchronous publish while its
// window of unacknowledged ones is full (it waits only briefly for room):
// with fsync on every write, acks come slowly and publishers must wait.
func stalled(err error) bool {
	if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		return false
	}
	time.Sleep(time.Millisecond)
	return true
}

func waitAsync(ctx context.Context, b *bus.Bus) error {
	select {
	case <-b.JS.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %d acks: %w", b.JS.PublishAsyncPending(), ctx.Err())
	}
}

// RawConsume reads n messages from EVENTS with a durable pull consumer and
// plain acks: the reference for TypedConsume.
func RawConsume(ctx context.Context, b *bus.Bus, n int, durable string) (Result, error) {
	c, err := b.JS.CreateOrUpdateConsumer(ctx, streams.Events, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096,
	})
	if err != nil {
		return Result{}, err
	}
	var got atomic.Int64
	done := make(chan struct{})
	t := start()
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		return Result{}, err
	}
	defer cc.Stop()
	if err := wait(ctx, done, &got, n); err != nil {
		return Result{}, err
	}
	return t.result("raw Consume+Ack", n), nil
}

// TypedConsume reads n events with Herald's consumer: envelope, schema
// validation, typed decoding, metrics, handler, ack.
func TypedConsume(ctx context.Context, b *bus.Bus, n int, durable string) (Result, error) {
	var got atomic.Int64
	done := make(chan struct{})
	t := start()
	sub, err := b.Consume(ctx, bus.ConsumerConfig{Stream: streams.Events, Durable: durable},
		func(_ context.Context, e *event.Event) error {
			if _, ok := e.Data.(event.IntegrationCallCompleted); !ok {
				return bus.Permanent(fmt.Errorf("unexpected %T", e.Data))
			}
			if got.Add(1) == int64(n) {
				close(done)
			}
			return nil
		})
	if err != nil {
		return Result{}, err
	}
	defer sub.Stop(context.WithoutCancel(ctx))
	if err := wait(ctx, done, &got, n); err != nil {
		return Result{}, err
	}
	return t.result("typed consume (decode+validate)", n), nil
}

func wait(ctx context.Context, done chan struct{}, got *atomic.Int64, n int) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("consumed %d of %d: %w", got.Load(), n, ctx.Err())
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timer measures wall and CPU time of one run.
type timer struct {
	wall time.Time
	cpu  time.Duration
}

func start() timer { return timer{wall: time.Now(), cpu: cpuTime()} }

func (t timer) result(name string, n int) Result {
	return Result{Name: name, N: n, Elapsed: time.Since(t.wall), CPU: cpuTime() - t.cpu}
}
