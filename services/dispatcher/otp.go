package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/otp"
	"github.com/heraldhq/herald/streams"
)

// source is the ce-source of the dispatcher's events.
const source = "herald/dispatcher"

// otpService issues and verifies OTPs.
type otpService struct {
	bus      *bus.Bus
	set      *otp.Settings
	log      *slog.Logger
	codes    *codeStore
	limits   *limiter
	idem     *idempotency
	done     *completions
	maxBody  int64
	outcomes *bus.Subscription
	metrics  *otpMetrics
}

type otpMetrics struct {
	sends    *prometheus.CounterVec
	verifies *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// Answers of the OTP endpoints, the values of their metrics' result label.
var (
	sendResults   = []string{"sent", "failed", "accepted", "pending", "limited", "rejected", "unavailable"}
	verifyResults = []string{"verified", "invalid_code", "expired", "revoked", "used", "too_many_attempts"}
)

// newOTPMetrics creates the dispatcher's metrics; the answer counters start
// at 0 for every configured app and result, so that the first of each is an
// increase.
func newOTPMetrics(reg prometheus.Registerer, apps []string) *otpMetrics {
	f := promauto.With(reg)
	m := &otpMetrics{
		sends: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_otp_sends_total",
			Help: "POST /v1/otp/send answers by app and result (sent, failed, accepted, pending, limited, rejected, unavailable).",
		}, []string{"app", "result"}),
		verifies: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_otp_verifications_total",
			Help: "POST /v1/otp/verify answers by app and result (verified, invalid_code, expired, revoked, used, too_many_attempts; not_found under app unknown).",
		}, []string{"app", "result"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_otp_send_duration_seconds",
			Help:    "Synchronous OTP send time, from request to delivery outcome, by app.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"app"}),
	}
	for _, app := range apps {
		for _, r := range sendResults {
			m.sends.WithLabelValues(app, r)
		}
		for _, r := range verifyResults {
			m.verifies.WithLabelValues(app, r)
		}
	}
	m.verifies.WithLabelValues("unknown", "not_found")
	return m
}

type otpIn struct {
	fx.In
	LC       fx.Lifecycle
	Bus      *bus.Bus
	Settings *otp.Settings
	Log      *slog.Logger
	Registry *prometheus.Registry
	API      api.Config
}

func newOTPService(in otpIn) (*otpService, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in.Bus.Need(streams.Events, streams.DLQ, "KV_"+codesBucket, "KV_"+limitsBucket, "KV_"+idempotencyBucket, rateLimitsStream)
	kvs := map[string]jetstream.KeyValue{}
	for _, name := range []string{codesBucket, limitsBucket, idempotencyBucket} {
		kv, err := in.Bus.JS.KeyValue(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("dispatcher: key-value bucket %s: %w", name, err)
		}
		kvs[name] = kv
	}
	s := &otpService{
		bus: in.Bus, set: in.Settings, log: in.Log.With("component", "dispatcher"),
		done: newCompletions(in.Bus), maxBody: int64(in.API.MaxBodyBytes), metrics: newOTPMetrics(in.Registry, in.Settings.AppNames()),
	}
	s.codes = &codeStore{bus: in.Bus, kv: kvs[codesBucket]}
	s.limits = newLimiter(in.Bus, kvs[limitsBucket], in.Settings)
	s.idem = &idempotency{kv: kvs[idempotencyBucket], ttl: in.Settings.OTP.IdempotencyTTL.D()}
	in.LC.Append(fx.Hook{OnStart: s.start, OnStop: s.stop})
	return s, nil
}

func (s *otpService) start(ctx context.Context) error {
	if err := s.done.start(ctx); err != nil {
		return err
	}
	sub, err := s.bus.Consume(ctx, bus.ConsumerConfig{
		Stream: streams.Events, Durable: "dispatcher-otp-outcomes",
		// otp_notification_failed is published exactly for the sends that
		// failed, just before their otp_delivery_completed: consuming it
		// rather than every completion keeps successful sends off this path.
		FilterSubjects: []string{"events.otp_notification_failed"}, Concurrency: 32,
	}, s.onFailed)
	if err != nil {
		return err
	}
	s.outcomes = sub
	return s.announce(ctx)
}

func (s *otpService) stop(ctx context.Context) error {
	s.done.stop()
	if s.outcomes == nil {
		return nil
	}
	return s.outcomes.Stop(ctx)
}

// onFailed revokes the code of a failed delivery, whoever waited for it
// (the synchronous send revokes too, before it answers; both are idempotent).
func (s *otpService) onFailed(ctx context.Context, e *event.Event) error {
	f, ok := event.As[event.OTPNotificationFailed](e)
	if !ok || e.RequestID == "" {
		return nil
	}
	if f.Reason == outcomeUnknown {
		// The SMS may have reached the phone (the adapter stopped during the
		// call): revoking would take a code the user may hold. Keeping it
		// is safe: a code that was never sent is known to nobody.
		return nil
	}
	return s.revoke(ctx, e.RequestID, "delivery_failed")
}

// outcomeUnknown is the reason of a delivery left in doubt by a crash.
const outcomeUnknown = "outcome_unknown"

// revoke makes a code unverifiable and records otp_revoked once.
func (s *otpService) revoke(ctx context.Context, requestID, reason string) error {
	r, changed, err := s.codes.update(ctx, requestID, func(r *codeRecord) bool {
		if r.State != statePending {
			return false
		}
		r.State, r.Reason = stateRevoked, reason
		return true
	})
	if errors.Is(err, errNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !changed && !(r.State == stateRevoked && r.Reason == reason) {
		return nil
	}
	// Published again after a crash between the update and the publish: the
	// deterministic id de-duplicates it.
	ev := event.New(source, event.OTPRevoked{App: r.App, Reason: reason},
		event.WithRequestID(requestID), event.WithID(requestID+".revoked"))
	if _, err := s.bus.Publish(ctx, ev); err != nil {
		return err
	}
	if changed {
		s.log.Info("otp revoked", "event", "otp_revoked", "requestId", requestID, "app", r.App, "reason", reason)
	}
	return nil
}

func (s *otpService) routes() []api.Route {
	return []api.Route{
		{Pattern: "POST /v1/otp/send", Access: api.Producer, Handler: http.HandlerFunc(s.send)},
		{Pattern: "POST /v1/otp/verify", Access: api.Producer, Handler: http.HandlerFunc(s.verify)},
		{Pattern: "GET /platform/otp", Access: api.Public, Handler: http.HandlerFunc(s.platform)},
	}
}
