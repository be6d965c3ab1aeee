// Package provideradapter is Herald's provider-adapter service: a durable
// consumer of dispatch events (otp_dlt_dispatch, otp_dlt_fallback) that
// opens each leg's seal (phone and code, bound to request, app, leg and
// route), refuses any leg that is not the app's plan, builds each provider payload, calls the provider with timeouts, bounded
// retries and a circuit breaker per provider and route, classifies the
// answer, applies the app's fallback policy, and records every step as
// events. It also turns providers' delivery receipts (webhooks) into
// otp_delivery_receipt events.
package provideradapter

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/otp"
	"github.com/heraldhq/herald/pkg/sms"
	"github.com/heraldhq/herald/streams"
)

// Module is the provider-adapter service.
var Module = fx.Module("provider-adapter",
	fx.Provide(newAdapter),
	fx.Provide(fx.Annotate(func(a *adapter) []api.Route { return a.routes() }, fx.ResultTags(`group:"routes,flatten"`))),
	fx.Invoke(func(*adapter) {}),
)

//go:embed kv/*.yaml
var kvFiles embed.FS

// StreamDefs are the adapter's key-value buckets (streams/ format).
func StreamDefs() fs.FS {
	return streams.Dir(kvFiles, "kv")
}

const (
	deliveryBucket = "OTP_DELIVERY"
	// One durable per leg kind, each with one filter subject, so that the
	// server can hold the adapter to reading these two subjects only
	// (pkg/access): with several filters a consumer's subjects are not
	// checked.
	durable         = "provider-adapter"
	durableFallback = "provider-adapter-fallback"
	source          = "herald/provider-adapter"
)

// adapter is the service.
type adapter struct {
	bus       *bus.Bus
	set       *otp.Settings
	log       *slog.Logger
	kv        jetstream.KeyValue
	providers map[string]sms.Provider
	sim       *sms.Simulator // providers[sms.Sim], switched by PUT /v1/simulator
	breakers  *breakers
	metrics   *metrics
	subs      []*bus.Subscription
	ackWait   time.Duration
}

type adapterIn struct {
	fx.In
	LC       fx.Lifecycle
	Bus      *bus.Bus
	Settings *otp.Settings
	Log      *slog.Logger
	Registry *prometheus.Registry
}

// Providers, when supplied to the fx graph, replace the built-in clients (tests).
func newAdapter(in adapterIn) (*adapter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in.Bus.Need(streams.Events, streams.DLQ, "KV_"+deliveryBucket)
	kv, err := in.Bus.JS.KeyValue(ctx, deliveryBucket)
	if err != nil {
		return nil, fmt.Errorf("provider-adapter: key-value bucket %s: %w", deliveryBucket, err)
	}
	m := newMetrics(in.Registry)
	log := in.Log.With("component", "provider-adapter")
	providers := sms.New(in.Settings.Providers)
	a := &adapter{bus: in.Bus, set: in.Settings, log: log, kv: kv, providers: providers, sim: providers[sms.Sim].(*sms.Simulator),
		metrics: m, breakers: newBreakers(&in.Settings.Providers, m, log)}
	for _, name := range in.Settings.AppNames() {
		plan := in.Settings.Apps[name].Plan(in.Settings.DLTEnabled)
		m.initApp(name, plan)
		for _, leg := range plan {
			a.breakers.get(leg.Provider, leg.Route) // its circuit state, closed, is exported from the start
		}
	}
	// A dispatch is handled within its delivery deadline plus one last
	// call: the ack wait must be longer, or the server would hand the same
	// dispatch to another worker while the first still works on it.
	var longest time.Duration
	for _, p := range sms.Names() {
		longest = max(longest, in.Settings.Providers.Common(p).Timeout.D())
	}
	a.ackWait = in.Settings.OTP.DeliveryTimeout.D() + longest + 2*time.Second
	in.LC.Append(fx.Hook{OnStart: a.start, OnStop: a.stop})
	return a, nil
}

func (a *adapter) start(ctx context.Context) error {
	n := a.set.Providers.Concurrency
	// Before the dispatch durable loses its fallback filter.
	fallbackFrom, err := a.fallbackStart(ctx)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		durable, subject string
		from             uint64
	}{
		{durable, "events.otp_dlt_dispatch", 0},
		{durableFallback, "events.otp_dlt_fallback", fallbackFrom},
	} {
		cfg := bus.ConsumerConfig{
			Stream: streams.Events, Durable: c.durable,
			FilterSubjects: []string{c.subject},
			Concurrency:    n,
			// No more in hand than workers: a dispatch waiting in a queue would
			// age towards its ack wait and be handed out twice.
			MaxAckPending: n,
			Batch:         min(n, 1000),
			AckWait:       a.ackWait,
			Backoff:       []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second},
		}
		if c.from > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, c.from
		}
		sub, err := a.bus.Consume(ctx, cfg, a.handle)
		if err != nil {
			_ = a.stop(ctx)
			return err
		}
		a.subs = append(a.subs, sub)
	}
	a.log.Info("provider adapter consuming", "concurrency", n, "ackWait", a.ackWait)
	return nil
}

func (a *adapter) stop(ctx context.Context) error {
	var errs []error
	for _, s := range a.subs {
		errs = append(errs, s.Stop(ctx))
	}
	a.subs = nil
	return errors.Join(errs...)
}
