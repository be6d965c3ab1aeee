package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/client"
	"github.com/heraldhq/herald/pkg/event"
)

// benchWorkers is the closed-loop load of each mode: that many producers,
// each sending one request and waiting for its outcome before the next.
const benchWorkers = 16

// BenchmarkOTPSends measures, in one run on one platform, synchronous OTP
// sends answered "sent": over HTTP (pkg/client), and as RabbitMQ requests
// relayed by the bridge with the outcome back on a reply-to queue; and, as
// the reference, raw JetStream publishes of one event each. It reports
// sends/s and the p50/p99 latency (publish to outcome received).
//
//	go test ./services/bridge -run '^$' -bench BenchmarkOTPSends -benchtime 2000x
func BenchmarkOTPSends(b *testing.B) {
	r := startAMQPRigWith(b, benchWorkers)
	var seq atomic.Int64
	phoneNext := func() string { return phone(int(seq.Add(1))) }

	b.Run("http", func(b *testing.B) {
		c := client.New(r.platform.URL, client.WithRetryFor(0))
		closedLoop(b, func(ctx context.Context) error {
			s, err := c.SendOTP(ctx, client.Send{App: "bank", Phone: phoneNext()})
			if err == nil && s.Status != "sent" {
				err = fmt.Errorf("status %s", s.Status)
			}
			return err
		})
	})

	b.Run("rabbitmq", func(b *testing.B) {
		replyTo, replies := r.queue(b, "", "")
		var mu sync.Mutex
		waiting := map[string]chan string{}
		go func() {
			for m := range replies {
				var o struct{ IdempotencyKey, Status string }
				_ = json.Unmarshal(m.Body, &o)
				mu.Lock()
				if ch, ok := waiting[o.IdempotencyKey]; ok {
					ch <- o.Status
					delete(waiting, o.IdempotencyKey)
				}
				mu.Unlock()
			}
		}()
		pub := r.rabbit.Channel(b)
		if err := pub.Confirm(false); err != nil {
			b.Fatal(err)
		}
		var pubMu sync.Mutex // one channel: publishes in turn
		closedLoop(b, func(ctx context.Context) error {
			id := fmt.Sprintf("bench-%d", seq.Add(1))
			done := make(chan string, 1)
			mu.Lock()
			waiting[id] = done
			mu.Unlock()
			pubMu.Lock()
			conf, err := pub.PublishWithDeferredConfirmWithContext(ctx, exchange, "otp.send", false, false,
				sendRequest(id, phoneNext(), replyTo))
			pubMu.Unlock()
			if err != nil {
				return err
			}
			if ok, err := conf.WaitContext(ctx); !ok || err != nil {
				return fmt.Errorf("publish not confirmed: %v", err)
			}
			select {
			case s := <-done:
				if s != "sent" {
					return fmt.Errorf("outcome %s", s)
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})

	b.Run("jetstream", func(b *testing.B) {
		bb := r.platform.As(b, access.Producer)
		closedLoop(b, func(ctx context.Context) error {
			e := event.New("bench", event.IntegrationCallCompleted{Integration: "stripe", Operation: "bench", StatusCode: 200, LatencyMs: 1})
			_, err := bb.Publish(ctx, e)
			return err
		})
	})
}

// closedLoop runs b.N calls of op from benchWorkers goroutines and
// reports their rate and latency percentiles.
func closedLoop(b *testing.B, op func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	errs := make(chan error, benchWorkers)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(ctx); err != nil {
					errs <- err
					cancel()
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/took.Seconds(), "sends/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
