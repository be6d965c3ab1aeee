// Package trace follows one request through the event log: the runbook's
// chain otp_generated → otp_dlt_dispatch → dlt_payload_ready →
// provider_response_* / otp_dlt_hard_failure → otp_delivery_completed, with
// each step's time, the gap since the one before, what the provider
// answered and the outcome. herald trace prints it; the console shows the
// same view.
package trace

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// Step is one event of the request.
type Step struct {
	Seq    uint64        `json:"seq"`
	Time   time.Time     `json:"time"`
	Since  time.Duration `json:"sinceStartNs"`
	Gap    time.Duration `json:"gapNs"`
	Type   string        `json:"type"`
	Source string        `json:"source"`
	// Detail is the step in a few words: the leg and route of a dispatch,
	// the provider's answer, the outcome.
	Detail string `json:"detail,omitempty"`
	// Data is the event's data as stored (phones masked, codes sealed).
	Data json.RawMessage `json:"data,omitempty"`
	// Invalid is why the event could not be decoded, if it could not.
	Invalid string `json:"invalid,omitempty"`
}

// Trace is a request's steps in log order, and how it ended.
type Trace struct {
	RequestID string `json:"requestId"`
	App       string `json:"app,omitempty"`
	// Outcome is the otp_delivery_completed status (delivered, sent,
	// failed …), or "in progress" when the log has none (yet).
	Outcome  string        `json:"outcome"`
	Duration time.Duration `json:"durationNs"`
	Steps    []Step        `json:"steps"`
}

// Options bound the read.
type Options struct {
	// Since starts the read at this storage time instead of the start of
	// the log (a request is seldom older than its day).
	Since time.Time
}

// Read reads EVENTS for one request id. A request with no event is a
// Trace without steps.
func Read(ctx context.Context, b *bus.Bus, requestID string, opts Options) (*Trace, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if !opts.Since.IsZero() {
		t := opts.Since
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t}
	}
	tr := &Trace{RequestID: requestID, Outcome: "in progress"}
	err := b.Scan(ctx, streams.Events, bus.ScanOptions{Consumer: cfg}, func(m jetstream.Msg, pos bus.Position) error {
		if event.HeaderValue(m.Headers(), event.HeaderRequestID) != requestID {
			return nil
		}
		tr.add(b.Catalog, m, pos)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", requestID, err)
	}
	return tr, nil
}

func (tr *Trace) add(cat *event.Catalog, m jetstream.Msg, pos bus.Position) {
	h := m.Headers()
	s := Step{Seq: pos.Seq, Time: pos.StoredAt(), Type: event.HeaderValue(h, event.HeaderType), Source: event.HeaderValue(h, event.HeaderSource),
		Data: json.RawMessage(m.Data())}
	if t, err := time.Parse(time.RFC3339Nano, event.HeaderValue(h, event.HeaderTime)); err == nil {
		s.Time = t.UTC()
	}
	e := &event.Event{Type: event.Type(s.Type), Raw: m.Data()}
	if err := cat.Decode(e); err != nil {
		s.Invalid = err.Error()
	} else {
		s.Detail = detail(e.Data)
		if app := appOf(e.Data); app != "" && tr.App == "" {
			tr.App = app
		}
		if d, ok := e.Data.(event.OTPDeliveryCompleted); ok {
			tr.Outcome = d.Status
		}
	}
	if len(tr.Steps) > 0 {
		first, prev := tr.Steps[0].Time, tr.Steps[len(tr.Steps)-1].Time
		s.Since, s.Gap = s.Time.Sub(first), s.Time.Sub(prev)
		tr.Duration = s.Since
	}
	tr.Steps = append(tr.Steps, s)
}

// detail says what a step did, in the runbook's words.
func detail(d event.Data) string {
	switch d := d.(type) {
	case event.OTPGenerated:
		return fmt.Sprintf("%s, policy %s, phone %s", d.App, d.DeliveryPolicy, d.Phone)
	case event.OTPDLTDispatch:
		return join(fmt.Sprintf("leg %d: %s %s", d.Leg, d.Provider, d.Route), reason(d.Reason))
	case event.OTPDLTFallback:
		return join(fmt.Sprintf("leg %d: %s %s", d.Leg, d.Provider, d.Route), reason(d.Reason))
	case event.DLTPayloadReady:
		return join(fmt.Sprintf("%s %s", d.Provider, d.Route), kv("template", d.TemplateID))
	case event.ProviderResponseReceived:
		return answer(event.ProviderResponse(d))
	case event.ProviderResponseFailed:
		return answer(event.ProviderResponse(d))
	case event.OTPDLTHardFailure:
		return join(fmt.Sprintf("%s %s", d.Provider, d.Route), reason(d.Reason), kv("policy", d.DeliveryPolicy))
	case event.OTPDeliveryCompleted:
		return join(d.Status, kv("mode", d.DeliveryMode), kv("provider", d.Provider), fmt.Sprintf("%d attempt(s)", d.Attempts),
			fmt.Sprintf("%.0fms", d.LatencyMs), reason(d.Reason))
	case event.OTPVerified:
		return fmt.Sprintf("verified after %d attempt(s)", d.Attempts)
	case event.OTPVerificationFailed:
		return reason(d.Reason)
	case event.OTPRevoked:
		return reason(d.Reason)
	}
	return ""
}

func answer(r event.ProviderResponse) string {
	return join(fmt.Sprintf("%s %s: HTTP %d", r.Provider, r.Route, r.StatusCode), kv("code", r.ProviderCode),
		r.Classification, fmt.Sprintf("attempt %d, %.0fms", r.Attempt, r.LatencyMs), r.Error)
}

// appOf is the app a step names, if any.
func appOf(d event.Data) string {
	switch d := d.(type) {
	case event.OTPGenerated:
		return d.App
	case event.OTPDLTDispatch:
		return d.App
	case event.OTPDeliveryCompleted:
		return d.App
	}
	return ""
}

func reason(r string) string { return kv("reason", r) }

func kv(k, v string) string {
	if v == "" {
		return ""
	}
	return k + " " + v
}

// join keeps the non-empty parts: no empty fragments.
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}
