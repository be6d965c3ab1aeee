package deliveryhealth_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/deliveryhealth"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func at(d time.Duration, data event.Data) *event.Event {
	return event.New("test", data, event.WithTime(t0.Add(d)))
}

func completed(app, status string, ms float64) event.Data {
	return event.OTPDeliveryCompleted{App: app, Status: status, Provider: "fast2sms", DeliveryMode: "dlt", Attempts: 1, LatencyMs: ms}
}

func call(ok bool, provider, route string, ms float64) event.Data {
	r := event.ProviderResponse{App: "shop", Provider: provider, Route: route, StatusCode: 200, Classification: "ok", Attempt: 1, LatencyMs: ms}
	if ok {
		return event.ProviderResponseReceived(r)
	}
	r.StatusCode, r.Classification = 503, "transient"
	return event.ProviderResponseFailed(r)
}

func TestFold(t *testing.T) {
	tests := []struct {
		name   string
		events []*event.Event
		apps   []deliveryhealth.Row
		routes []deliveryhealth.Row
	}{
		{name: "nothing", apps: nil, routes: nil},
		{
			name: "completions per app, quantiles by nearest rank",
			events: []*event.Event{
				at(time.Minute, completed("shop", "delivered", 100)), at(2*time.Minute, completed("shop", "delivered", 300)),
				at(3*time.Minute, completed("shop", "failed", 200)), at(4*time.Minute, completed("bank", "sent", 50)),
			},
			apps: []deliveryhealth.Row{
				{App: "bank", Sent: 1, P50Ms: 50, P99Ms: 50},
				{App: "shop", Sent: 3, Delivered: 2, Failed: 1, P50Ms: 200, P99Ms: 300},
			},
		},
		{
			name: "calls per provider/route, fallbacks count on both sides; leg 0 off DLT is no fallback",
			events: []*event.Event{
				at(time.Minute, call(false, "fast2sms", "dlt", 900)),
				at(time.Minute, event.OTPDLTFallback{App: "shop", Provider: "twilio", Route: "sms", FromProvider: "fast2sms", FromRoute: "dlt", Reason: "transient", DeliveryPolicy: "dlt_with_fallback", Leg: 1}),
				at(time.Minute, event.OTPDLTFallback{App: "shop", Provider: "fast2sms", Route: "q", Reason: "dlt_inactive", DeliveryPolicy: "dlt_with_fallback"}),
				at(time.Minute, call(true, "twilio", "sms", 120)),
			},
			apps: []deliveryhealth.Row{{App: "shop", Fallback: 1}},
			routes: []deliveryhealth.Row{
				{Provider: "fast2sms", Route: "dlt", Sent: 1, Failed: 1, Fallback: 1, P50Ms: 900, P99Ms: 900},
				{Provider: "twilio", Route: "sms", Sent: 1, Delivered: 1, P50Ms: 120, P99Ms: 120},
			},
		},
		{
			name: "outside the window is not counted",
			events: []*event.Event{
				at(-time.Second, completed("shop", "failed", 1)), at(time.Hour, completed("shop", "failed", 1)),
				at(time.Hour-time.Nanosecond, completed("shop", "delivered", 7)),
			},
			apps: []deliveryhealth.Row{{App: "shop", Sent: 1, Delivered: 1, P50Ms: 7, P99Ms: 7}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := deliveryhealth.NewFold(t0, t0.Add(time.Hour))
			for _, e := range tc.events {
				f.Add(e)
			}
			rep := f.Report()
			check(t, "apps", rep.Apps, tc.apps)
			check(t, "routes", rep.Routes, tc.routes)
		})
	}
}

func check(t *testing.T, what string, got []*deliveryhealth.Row, want []deliveryhealth.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d: %+v", what, len(got), len(want), got)
	}
	for i, w := range want {
		g := *got[i]
		if len(g.Series) != deliveryhealth.Buckets {
			t.Errorf("%s[%d]: %d buckets", what, i, len(g.Series))
		}
		g.Series = nil
		if g.App != w.App || g.Provider != w.Provider || g.Route != w.Route || g.Sent != w.Sent || g.Delivered != w.Delivered ||
			g.Failed != w.Failed || g.Fallback != w.Fallback || g.P50Ms != w.P50Ms || g.P99Ms != w.P99Ms {
			t.Errorf("%s[%d] = %+v, want %+v", what, i, g, w)
		}
	}
}

// TestSeries puts each outcome in the bucket of its event time.
func TestSeries(t *testing.T) {
	f := deliveryhealth.NewFold(t0, t0.Add(time.Hour))
	f.Add(at(0, completed("shop", "delivered", 1)))
	f.Add(at(59*time.Minute+30*time.Second, completed("shop", "failed", 1)))
	f.Add(at(59*time.Minute+31*time.Second, completed("shop", "failed", 1)))
	s := f.Report().Apps[0].Series
	if s[0].Delivered != 1 || s[59].Failed != 2 || !s[59].Start.Equal(t0.Add(59*time.Minute)) {
		t.Errorf("series: first %+v, last %+v", s[0], s[59])
	}
}

// TestRead folds what EVENTS holds, only the projection's types.
func TestRead(t *testing.T) {
	b := heraldtest.JetStream(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := b.Publish(ctx,
		event.New("test", completed("shop", "delivered", 80)),
		event.New("test", call(false, "fast2sms", "dlt", 40)),
		event.New("test", event.OTPVerified{App: "shop", Attempts: 1}),
	); err != nil {
		t.Fatal(err)
	}
	rep, err := deliveryhealth.Read(ctx, b, now.Add(-time.Hour), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Apps) != 1 || rep.Apps[0].Delivered != 1 || len(rep.Routes) != 1 || rep.Routes[0].Failed != 1 || rep.Seq != 2 {
		t.Errorf("report: apps %+v routes %+v seq %d", rep.Apps, rep.Routes, rep.Seq)
	}
}
