package pagerduty_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/pagerduty"
)

func trigger(key string) *pagerduty.Event {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return &pagerduty.Event{RoutingKey: key, EventAction: pagerduty.Trigger, DedupKey: "inc-0193a5a07c1e7000",
		Payload: &pagerduty.Payload{Summary: "[P1] otp-failure-rate", Source: "fast2sms", Severity: pagerduty.SeverityCritical,
			Timestamp: &at, Class: "otp-failure-rate"}}
}

func TestSendClassifiesEveryAnswer(t *testing.T) {
	pd := heraldtest.StartPagerDuty(t)
	other := strings.Repeat("x", 32) // well formed, not the fake's
	for _, tc := range []struct {
		name   string
		script []heraldtest.PagerDutyReply
		event  func() *pagerduty.Event
		kind   pagerduty.Kind
		code   string
		retry  time.Duration
		calls  int
	}{
		{"accepted", nil, func() *pagerduty.Event { return trigger(pd.RoutingKey) }, -1, "", 0, 1},
		{"acknowledge needs only the key", nil, func() *pagerduty.Event {
			return &pagerduty.Event{RoutingKey: pd.RoutingKey, EventAction: pagerduty.Acknowledge, DedupKey: "inc-0193a5a07c1e7000"}
		}, -1, "", 0, 1},
		{"429 with Retry-After", []heraldtest.PagerDutyReply{{HTTPStatus: 429, RetryAfter: "2"}},
			func() *pagerduty.Event { return trigger(pd.RoutingKey) }, pagerduty.RateLimited, "rate_limited", 2 * time.Second, 1},
		{"429 without", []heraldtest.PagerDutyReply{{HTTPStatus: 429}},
			func() *pagerduty.Event { return trigger(pd.RoutingKey) }, pagerduty.RateLimited, "rate_limited", pagerduty.DefaultRetryAfter, 1},
		{"500", []heraldtest.PagerDutyReply{{HTTPStatus: 500}},
			func() *pagerduty.Event { return trigger(pd.RoutingKey) }, pagerduty.Transient, "http_500", 0, 1},
		{"400 from PagerDuty", nil, func() *pagerduty.Event { return trigger(other) }, pagerduty.Permanent, "invalid_event", 0, 1},
		{"invalid here: not sent", nil, func() *pagerduty.Event {
			e := trigger(pd.RoutingKey)
			e.Payload.Severity = "urgent"
			return e
		}, pagerduty.Permanent, "invalid_event", 0, 0},
		{"resolve without a dedup_key: not sent", nil, func() *pagerduty.Event {
			return &pagerduty.Event{RoutingKey: pd.RoutingKey, EventAction: pagerduty.Resolve}
		}, pagerduty.Permanent, "invalid_event", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pd.Calls())
			pd.Script(tc.script...)
			r, err := pagerduty.NewClient(pd.URL, nil).Send(context.Background(), tc.event())
			if got := len(pd.Calls()) - before; got != tc.calls {
				t.Errorf("%d calls, want %d", got, tc.calls)
			}
			if tc.kind < 0 {
				if err != nil || r.Status != "success" || r.DedupKey != "inc-0193a5a07c1e7000" {
					t.Fatalf("answer %+v, %v", r, err)
				}
				return
			}
			var pe *pagerduty.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Code != tc.code || pe.RetryAfter != tc.retry {
				t.Fatalf("error %#v, want kind %d code %s retry %s", err, tc.kind, tc.code, tc.retry)
			}
			if strings.Contains(err.Error(), pd.RoutingKey) || strings.Contains(err.Error(), other) {
				t.Errorf("the error shows the routing key: %v", err)
			}
		})
	}
	// PagerDuty's 400 explains itself; the explanation is kept.
	_, err := pagerduty.NewClient(pd.URL, nil).Send(context.Background(), trigger(other))
	if err == nil || !strings.Contains(err.Error(), "Event object is invalid: Invalid routing key") {
		t.Errorf("400 detail lost: %v", err)
	}
}

func TestSendReportsNetworkErrorsAsTransient(t *testing.T) {
	_, err := pagerduty.NewClient("http://127.0.0.1:1/v2/enqueue", &http.Client{Timeout: time.Second}).
		Send(context.Background(), trigger(strings.Repeat("a", 32)))
	var pe *pagerduty.Error
	if !errors.As(err, &pe) || pe.Kind != pagerduty.Transient || pe.Code != "network" {
		t.Fatalf("error %#v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{"": pagerduty.DefaultRetryAfter, "3": 3 * time.Second, "0.5": 500 * time.Millisecond,
		"soon": pagerduty.DefaultRetryAfter} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := pagerduty.RetryAfter(h); got != want {
			t.Errorf("Retry-After %q: %s, want %s", v, got, want)
		}
	}
}

func TestAnAnswerThatIsNotPagerDutysIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent) // a proxy in the way, say
	}))
	t.Cleanup(srv.Close)
	_, err := pagerduty.NewClient(srv.URL, nil).Send(context.Background(), trigger(strings.Repeat("a", 32)))
	var pe *pagerduty.Error
	if !errors.As(err, &pe) || pe.Kind != pagerduty.Transient || pe.Code != "invalid_response" {
		t.Fatalf("error %#v", err)
	}
}
