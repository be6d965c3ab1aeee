package bridge

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Kinds of bridged messages, the kind label.
const (
	kindOTPSend = "otp_send"
	kindEvent   = "event"
)

// Results of a bridged message, the result label: what Herald made of it.
const (
	resultSent        = "sent" // an OTP send answered (sent, pending, accepted)
	resultSMSFailed   = "sms_failed"
	resultRateLimited = "rate_limited"
	resultForwarded   = "forwarded" // events stored in EVENTS
	resultDuplicate   = "duplicate" // events EVENTS already had
	resultRejected    = "rejected"  // to the producer's dead letters
)

// results are each kind's possible results.
var results = map[string][]string{
	kindOTPSend: {resultSent, resultSMSFailed, resultRateLimited, resultRejected},
	kindEvent:   {resultForwarded, resultDuplicate, resultRejected},
}

type metrics struct {
	messages *prometheus.CounterVec
	retries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics creates the bridge's metrics, every configured bridge's
// counters at 0 so that the first rejection is an increase.
func newMetrics(reg *prometheus.Registry, cfg Config) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		messages: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_bridge_messages_total",
			Help: "Messages bridged from producers' brokers, by bridge, kind (otp_send, event) and result (sent, sms_failed, rate_limited, forwarded, duplicate, rejected).",
		}, []string{"bridge", "kind", "result"}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_bridge_retries_total",
			Help: "Bridged messages that failed in a way that may pass (Herald or the event log unavailable) and were tried again, by bridge.",
		}, []string{"bridge"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_bridge_message_duration_seconds",
			Help:    "Time to handle one bridged message (an OTP send includes the provider's answer), by bridge and kind.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"bridge", "kind"}),
	}
	kinds := map[string][]string{}
	for _, a := range cfg.AMQP {
		kinds[a.Name] = []string{kindOTPSend, kindEvent}
	}
	for _, o := range cfg.Outbox {
		kinds[o.Name] = []string{kindEvent}
	}
	for b, ks := range kinds {
		m.retries.WithLabelValues(b)
		for _, k := range ks {
			m.duration.WithLabelValues(b, k)
			for _, r := range results[k] {
				m.messages.WithLabelValues(b, k, r)
			}
		}
	}
	return m
}
