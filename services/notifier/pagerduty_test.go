package notifier_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/services/notifier"
	"github.com/heraldhq/herald/streams"
)

// pagerDutyApp runs the notifier routing every incident to the fake
// PagerDuty, its routing key read from a file, its logs (debug) in logs.
func pagerDutyApp(t *testing.T, pd *heraldtest.PagerDuty, logs *heraldtest.Buffer) *apptest.App {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "pagerduty.key")
	if err := os.WriteFile(keyFile, []byte(pd.RoutingKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithLogOutput(logs), apptest.WithConfig(fmt.Sprintf(`
log: {level: debug}
notifier:
  pagerduty: {url: %q, routingKeyFile: %q}
  rateLimit: {perSecond: 50, burst: 5}
  retry: {initial: 50ms, max: 200ms}
  routes:
    - {name: oncall, channels: [pagerduty]}
`, pd.URL, keyFile)))
}

// acknowledge publishes an acknowledgement as the notifier role does (a
// Slack button, the API).
func acknowledge(t *testing.T, a *apptest.App, id string) {
	t.Helper()
	e := event.New("notifier", event.IncidentAcknowledged{IncidentID: id, By: "U024BE7LH", Via: "api", At: onset.Add(8 * time.Minute)},
		event.WithSubject("notifications.incident_acknowledged."+id), event.WithID("ack-"+id))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.As(t, access.Notifier).Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
}

// pdFlush proves the notifier has nothing more to send to PagerDuty for
// what came before (as flush does for Slack): a sentinel incident's trigger
// is recorded. It returns the calls about every other incident.
func pdFlush(t *testing.T, a *apptest.App, pd *heraldtest.PagerDuty) []heraldtest.PagerDutyCall {
	t.Helper()
	id := fmt.Sprintf("inc-%016x", rand.Uint64())
	newIncident(t, a.As(t, access.Incident), id, "P3", map[string]string{"app": sentinelApp}).open()
	heraldtest.Eventually(t, 10*time.Second, "the sentinel's trigger in the ledger", func() bool {
		return count(t, a.Bus, "notifications.pagerduty_event_sent."+id+".>")+
			count(t, a.Bus, "notifications.notification_failed."+id+".>") >= 1
	})
	var out []heraldtest.PagerDutyCall
	for _, c := range pd.Calls() {
		if !strings.Contains(string(c.Body), `"`+sentinelApp+`"`) {
			out = append(out, c)
		}
	}
	return out
}

func actions(calls []heraldtest.PagerDutyCall) string {
	var parts []string
	for _, c := range calls {
		p := fmt.Sprintf("%s/%s", c.Action, c.DedupKey)
		if c.Severity != "" {
			p += "/" + c.Severity
		}
		if !c.Accepted() {
			p += fmt.Sprintf("→%d", c.Status)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func TestPagerDutyTriggersUpdatesAcknowledgesAndResolvesOnceAcrossRestarts(t *testing.T) {
	pd := heraldtest.StartPagerDuty(t)
	var logs heraldtest.Buffer
	a := pagerDutyApp(t, pd, &logs)
	const id = "inc-9d0000000000001a"
	inc := newIncident(t, a.As(t, access.Incident), id, "P2", map[string]string{"app": "shop", "provider": "fast2sms"})

	inc.open()
	pd.WaitCalls(t, 1, 10*time.Second)
	inc.escalate("P1")
	pd.WaitCalls(t, 2, 10*time.Second)
	// A restart in the middle: what was sent is not sent again.
	a.Restart(t)
	inc.b = a.As(t, access.Incident)
	acknowledge(t, a, id)
	pd.WaitCalls(t, 3, 10*time.Second)
	if al, _ := pd.Alert(id); al.Status != "acknowledged" || al.Severity != "critical" {
		t.Errorf("after the acknowledgement PagerDuty's alert is %+v", al)
	}
	inc.resolve()
	pd.WaitCalls(t, 4, 10*time.Second)
	a.Restart(t)
	acknowledge(t, a, id) // redelivered or replayed: changes nothing
	calls := pdFlush(t, a, pd)

	want := "trigger/" + id + "/error trigger/" + id + "/critical acknowledge/" + id + " resolve/" + id
	if got := actions(calls); got != want {
		t.Fatalf("PagerDuty received:\n  %s\nwant:\n  %s", got, want)
	}
	if al, _ := pd.Alert(id); al.Status != "resolved" || al.Events != 4 {
		t.Errorf("PagerDuty's alert ends %+v", al)
	}
	if c := calls[0]; !strings.HasPrefix(c.Summary, "[P2] otp-failure-rate (app=shop provider=fast2sms): shop: 23% of OTP sends failing") ||
		c.Source != "fast2sms" {
		t.Errorf("trigger payload: summary %q source %q", c.Summary, c.Source)
	}
	for _, part := range []string{`"class":"otp-failure-rate"`, `"timestamp":"2026-11-22T10:00:00Z"`, `"href":"https://herald.dev/runbooks/otp-dlt-outage"`} {
		if !strings.Contains(string(calls[0].Body), part) {
			t.Errorf("trigger body lacks %s: %s", part, calls[0].Body)
		}
	}

	var steps []string
	for _, e := range ledger[event.PagerDutyEventSent](t, a.Bus) {
		if e.IncidentID == id {
			steps = append(steps, e.Step+":"+e.Transition+":"+e.EventAction)
		}
	}
	if got := strings.Join(steps, " "); got != "root:opened:trigger reply:escalated-1:trigger acknowledge:acknowledged:acknowledge reply:resolved-2:resolve" {
		t.Errorf("ledger: %s", got)
	}

	// The routing key is a secret: in no log line, no stored event.
	if strings.Contains(logs.String(), pd.RoutingKey) {
		t.Error("the routing key is in the logs")
	}
	if !strings.Contains(logs.String(), "notifier active") {
		t.Error("the logs were not captured")
	}
	for stream, text := range a.StoredText(t) {
		if strings.Contains(text, pd.RoutingKey) {
			t.Errorf("the routing key is stored in %s", stream)
		}
	}
}

func TestPagerDutyRetriesRateLimitsAndServerErrorsAndGivesUpInvalidEvents(t *testing.T) {
	pd := heraldtest.StartPagerDuty(t)
	var logs heraldtest.Buffer
	a := pagerDutyApp(t, pd, &logs)
	const id = "inc-9d0000000000002b"
	inc := newIncident(t, a.As(t, access.Incident), id, "P3", map[string]string{"app": "bank"})

	// 429 with Retry-After, then 500: the trigger is retried until
	// accepted, and recorded once.
	pd.Script(heraldtest.PagerDutyReply{HTTPStatus: 429, RetryAfter: "1"}, heraldtest.PagerDutyReply{HTTPStatus: 500})
	inc.open()
	calls := pd.WaitCalls(t, 3, 10*time.Second)
	if got := actions(calls); got != "trigger/"+id+"/warning→429 trigger/"+id+"/warning→500 trigger/"+id+"/warning" {
		t.Fatalf("calls: %s", got)
	}
	if gap := calls[1].Time.Sub(calls[0].Time); gap < 950*time.Millisecond {
		t.Errorf("retried %s after a 429 with Retry-After: 1", gap)
	}

	// 400: given up at once, recorded, and the incident goes on.
	pd.Script(heraldtest.PagerDutyReply{HTTPStatus: 400})
	inc.escalate("P1")
	heraldtest.Eventually(t, 10*time.Second, "the failure in the ledger", func() bool {
		return count(t, a.Bus, "notifications.notification_failed."+id+".>") == 1
	})
	inc.resolve()
	calls = pdFlush(t, a, pd)
	if got := actions(calls); got != "trigger/"+id+"/warning→429 trigger/"+id+"/warning→500 trigger/"+id+"/warning trigger/"+id+"/critical→400 resolve/"+id {
		t.Errorf("calls: %s", got)
	}
	failed := ledger[event.NotificationFailed](t, a.Bus)
	if len(failed) != 1 || failed[0].Mode != "pagerduty" || failed[0].Error != "invalid_event" || failed[0].Status != 400 ||
		failed[0].Transition != "escalated-1" || failed[0].Action != "reply" ||
		failed[0].Detail != "slack pagerduty: invalid_event (HTTP 400): Event object is invalid: scripted refusal" {
		t.Errorf("notification_failed: %+v", failed)
	}
	sent := 0
	for _, e := range ledger[event.PagerDutyEventSent](t, a.Bus) {
		if e.IncidentID == id {
			sent++
		}
	}
	if sent != 2 {
		t.Errorf("%d pagerduty_event_sent entries, want 2 (the trigger and the resolve)", sent)
	}
	if m := a.Metric(t, `herald_notifier_calls_total{mode="pagerduty",outcome="rate_limited",step="root"}`); m != 1 {
		t.Errorf("rate-limited calls counted %v", m)
	}
}

func TestPagerDutyAcknowledgesNothingResolvedAndSkipsUnknownAcks(t *testing.T) {
	pd := heraldtest.StartPagerDuty(t)
	var logs heraldtest.Buffer
	a := pagerDutyApp(t, pd, &logs)
	const id = "inc-9d0000000000003c"
	newIncident(t, a.As(t, access.Incident), id, "P1", map[string]string{"app": "shop"}).open().resolve()
	pd.WaitCalls(t, 2, 10*time.Second)
	acknowledge(t, a, id)                     // after the resolve: resolved wins
	acknowledge(t, a, "inc-9d000000000000ff") // an incident the notifier never saw
	if got := actions(pdFlush(t, a, pd)); got != "trigger/"+id+"/critical resolve/"+id {
		t.Errorf("calls: %s", got)
	}
}

func TestPagerDutyConfiguration(t *testing.T) {
	key := strings.Repeat("k", 32)
	b := heraldtest.JetStream(t)
	emptyFile := filepath.Join(t.TempDir(), "empty.key")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*notifier.Config)
		want string
	}{
		{"a route to pagerduty without a key", func(c *notifier.Config) {}, "no pagerduty.routingKey"},
		{"a short key", func(c *notifier.Config) { c.PagerDuty.RoutingKey = "abc" }, "pagerduty.routingKey: a routing key is 32"},
		{"both a key and a file", func(c *notifier.Config) { c.PagerDuty.RoutingKey, c.PagerDuty.RoutingKeyFile = key, "/k" },
			"exclusive"},
		{"an unknown severity", func(c *notifier.Config) {
			c.PagerDuty.RoutingKey = key
			c.PagerDuty.SeverityMap = map[string]string{"P1": "urgent", "P2": "error", "P3": "info"}
		}, `pagerduty.severityMap.P1: "urgent"`},
		{"a key file with no key", func(c *notifier.Config) { c.PagerDuty.RoutingKeyFile = emptyFile }, "pagerduty.routingKeyFile: a routing key is 32"},
		{"a missing key file", func(c *notifier.Config) { c.PagerDuty.RoutingKeyFile = "/nonexistent/pd.key" }, "pagerduty.routingKeyFile"},
		{"a bad URL", func(c *notifier.Config) { c.PagerDuty.RoutingKey, c.PagerDuty.URL = key, "events.pagerduty.com" }, "pagerduty.url"},
		{"valid", func(c *notifier.Config) { c.PagerDuty.RoutingKey = key }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := notifier.DefaultConfig()
			cfg.Routes = []notifier.Route{{Name: "oncall", Match: event.SubscriptionMatch{Severity: "P1"}, Channels: []string{"pagerduty"}}}
			tc.edit(&cfg)
			_, err := notifier.New(cfg, notifier.Deps{Bus: b})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), key):
				t.Fatalf("the error shows the key: %v", err)
			}
		})
	}
}

// PagerDuty cannot be asked what it received, so a crash between its 202
// and the ledger's acknowledgement sends that event again (the window of
// the webhooks, docs/notifier.md). The events are idempotent by dedup_key:
// the alert ends as it would have.
func TestACrashBetweenPagerDutysAnswerAndTheLedgerRepeatsOnlyThatEvent(t *testing.T) {
	b := heraldtest.JetStream(t)
	pd := heraldtest.StartPagerDuty(t)
	cfg := notifier.DefaultConfig()
	cfg.PagerDuty.URL, cfg.PagerDuty.RoutingKey = pd.URL, pd.RoutingKey
	cfg.Routes = []notifier.Route{{Name: "oncall", Channels: []string{"pagerduty"}}}
	cfg.RateLimit.PerSecond, cfg.RateLimit.Burst = 50, 5
	const id = "inc-9d0000000000004d"
	c := newCrashOnce()
	recorded := func(n int) func() bool {
		return func() bool { return count(t, b, "notifications.pagerduty_event_sent."+id+".>") == n }
	}
	inc := newIncident(t, b, id, "P2", map[string]string{"app": "shop"}).open()
	crashes := runUntil(t, b, cfg, c, "the trigger", recorded(1))
	inc.escalate("P1")
	crashes += runUntil(t, b, cfg, c, "the second trigger", recorded(2))
	e := event.New("notifier", event.IncidentAcknowledged{IncidentID: id, By: "ana", Via: "cli", At: onset.Add(7 * time.Minute)},
		event.WithSubject("notifications.incident_acknowledged."+id), event.WithID("ack-"+id))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	crashes += runUntil(t, b, cfg, c, "the acknowledge", recorded(3))
	inc.resolve()
	crashes += runUntil(t, b, cfg, c, "the resolve", recorded(4))

	if crashes != 4 {
		t.Errorf("%d crashes, want one at each of the 4 events", crashes)
	}
	want := "trigger/" + id + "/error trigger/" + id + "/error trigger/" + id + "/critical trigger/" + id + "/critical " +
		"acknowledge/" + id + " acknowledge/" + id + " resolve/" + id + " resolve/" + id
	if got := actions(pd.Calls()); got != want {
		t.Errorf("PagerDuty received:\n  %s\nwant each event twice:\n  %s", got, want)
	}
	if al, _ := pd.Alert(id); al.Status != "resolved" || al.Severity != "critical" {
		t.Errorf("PagerDuty's alert ends %+v", al)
	}
}

// The whole way: a provider's 401 opens the default rule's incident in the
// incident service, which PagerDuty gets as a trigger under the incident's
// id; the provider's next success resolves both.
func TestPagerDutyGetsTheIncidentServicesIncidents(t *testing.T) {
	pd := heraldtest.StartPagerDuty(t)
	a := apptest.StartApp(t, apptest.WithTargets("incident", "notifier"), apptest.WithConfig(fmt.Sprintf(`
notifier:
  pagerduty: {url: %q, routingKey: %q}
  routes:
    - {name: unpaid, match: {rule: provider-payment-required}, channels: [pagerduty]}
`, pd.URL, pd.RoutingKey)))
	adapter := a.As(t, access.ProviderAdapter)
	publish := func(d event.Data) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := adapter.Publish(ctx, event.New("adapter", d, event.WithRequestID(fmt.Sprintf("r-%d", rand.Uint64())))); err != nil {
			t.Fatal(err)
		}
	}
	publish(event.ProviderResponseFailed{App: "shop", Provider: "acme", Route: "q", StatusCode: 401,
		Classification: "payment_required", Attempt: 1, LatencyMs: 40})
	pd.WaitCalls(t, 1, 15*time.Second) // the trigger before the success
	publish(event.ProviderResponseReceived{App: "shop", Provider: "acme", Route: "q", StatusCode: 200,
		Classification: "ok", Attempt: 1, LatencyMs: 50})
	calls := pd.WaitCalls(t, 2, 15*time.Second)

	var opened []event.IncidentOpened
	for _, e := range heraldtest.Events(t, a.Bus, streams.Incidents, "incidents.incident_opened.>") {
		opened = append(opened, e.Data.(event.IncidentOpened))
	}
	if len(opened) != 1 || opened[0].Rule != "provider-payment-required" {
		t.Fatalf("incidents opened: %+v", opened)
	}
	id := opened[0].IncidentID
	if got := actions(calls); got != "trigger/"+id+"/error resolve/"+id {
		t.Errorf("PagerDuty received %s", got)
	}
	if c := calls[0]; c.Source != "acme" || !strings.Contains(c.Summary, "acme: calls refused for payment or credentials") {
		t.Errorf("trigger: source %q summary %q", c.Source, c.Summary)
	}
	if al, _ := pd.Alert(id); al.Status != "resolved" {
		t.Errorf("PagerDuty's alert: %+v", al)
	}
}
