package notifier_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/slack"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func TestConsoleSinkIsTheDefaultAndPrintsReadableLines(t *testing.T) {
	var out heraldtest.Buffer
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithStdout(&out))
	inc := newIncident(t, a.As(t, access.Incident), "inc-c0501e0000000001", "P2", map[string]string{"app": "shop", "provider": "fast2sms"})
	inc.open().escalate("P1").resolve()
	want := []string{
		`2026-11-22T10:00:00Z  OPENED     P2  otp-failure-rate  app=shop provider=fast2sms  inc-c0501e0000000001  "shop: 23% of OTP sends failing"  23/100 failed (23%) over 5m0s  runbook https://herald.dev/runbooks/otp-dlt-outage`,
		`2026-11-22T10:06:00Z  ESCALATED  P2→P1  otp-failure-rate  app=shop provider=fast2sms  inc-c0501e0000000001  61/100 failed (61%) over 5m0s`,
		`2026-11-22T10:20:00Z  RESOLVED   peak P1  otp-failure-rate  app=shop provider=fast2sms  inc-c0501e0000000001  after 20m`,
	}
	heraldtest.Eventually(t, 5*time.Second, "three console lines", func() bool { return strings.Count(out.String(), "\n") >= 3 })
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("console:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The console is a side effect like any other: a restart prints nothing
	// again. The restarted notifier queues what it finds unfinished before
	// it consumes the new incident, so a line printed again would come
	// before the new incident's.
	a.Restart(t)
	newIncident(t, a.As(t, access.Incident), "inc-c0501e0000000002", "P3", map[string]string{"app": "bank"}).open()
	heraldtest.Eventually(t, 5*time.Second, "the new incident", func() bool {
		return strings.Contains(out.String(), "inc-c0501e0000000002")
	})
	if n := strings.Count(out.String(), "inc-c0501e0000000001"); n != 3 {
		t.Errorf("after a restart the first incident appears in %d lines:\n%s", n, out.String())
	}
	for _, e := range ledger[event.SlackMessagePosted](t, a.Bus) {
		if e.Mode != "console" || e.Channel != "console" {
			t.Errorf("ledger %+v", e)
		}
	}
}

func TestIncomingAndGenericWebhooksPostOneMessagePerTransition(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(fmt.Sprintf(`
notifier:
  incomingWebhooks: {ops: %q}
  webhooks:
    pager: {url: %q, headers: {X-Team: sre}}
  rateLimit: {perSecond: 50, burst: 5}
  routes:
    - {name: everything, channels: ["incoming:ops", "webhook:pager"]}
`, s.IncomingWebhookURL("ops"), s.WebhookURL("pager"))))
	newIncident(t, a.As(t, access.Incident), "inc-00b0000000000001", "P2", map[string]string{"app": "shop"}).open().escalate("P1").resolve()
	waitCalls(t, s, 6, 5*time.Second)
	calls := flush(t, a.As(t, access.Incident), a.Bus, s, 2)
	var incoming, generic []heraldtest.SlackCall
	for _, c := range calls {
		if c.Method == "incoming_webhook" {
			incoming = append(incoming, c)
		} else {
			generic = append(generic, c)
		}
	}
	if len(incoming) != 3 || !strings.HasPrefix(incoming[0].Text, "[P2]") || !strings.HasPrefix(incoming[1].Text, "Escalated") ||
		!strings.HasPrefix(incoming[2].Text, "Resolved") {
		t.Errorf("incoming webhook:%s", describe(incoming))
	}
	if txt := blocksText(t, incoming[2].Blocks); !strings.Contains(txt, "inc-00b0000000000001") {
		t.Errorf("a standalone reply does not say which incident it is about:\n%s", txt)
	}
	var types []string
	for _, c := range generic {
		var p struct {
			Type     string `json:"type"`
			Incident struct {
				Severity string `json:"severity"`
				Status   string `json:"status"`
			} `json:"incident"`
		}
		if err := json.Unmarshal(c.Body, &p); err != nil {
			t.Fatal(err)
		}
		types = append(types, p.Type+"/"+p.Incident.Severity+"/"+p.Incident.Status)
	}
	if strings.Join(types, " ") != "incident_opened/P2/open incident_escalated/P1/open incident_resolved/P1/resolved" {
		t.Errorf("generic webhook got %v", types)
	}
	modes := map[string]int{}
	for _, e := range ledger[event.SlackMessagePosted](t, a.Bus) {
		modes[e.Mode]++
		if e.TS != "" || e.ThreadTS != "" {
			t.Errorf("a webhook post has a ts: %+v", e)
		}
	}
	if modes["incoming_webhook"] != 3+1 || modes["webhook"] != 3+1 { // and the sentinel's
		t.Errorf("ledger modes %v", modes)
	}
}

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

func slashConfig(s *heraldtest.Slack) string {
	return fmt.Sprintf(`
notifier:
  slack: {apiURL: %q, botToken: %q, signingSecret: %q}
  rateLimit: {perSecond: 50, burst: 5}
  routes:
    - {name: p1, match: {severity: P1}, channels: [C0ONCALL]}
`, s.APIURL, s.Token, secret)
}

// command sends a slash command as Slack does: a form, signed at ts.
func command(t *testing.T, a *apptest.App, text, channel string, ts time.Time, key string) *heraldtest.Response {
	t.Helper()
	form := url.Values{"token": {"legacy-ignored"}, "team_id": {"T0001"}, "channel_id": {channel}, "channel_name": {"shop-alerts"},
		"user_id": {"U2147483697"}, "user_name": {"ana"}, "command": {"/herald"}, "text": {text},
		"response_url": {"https://hooks.slack.com/commands/1234/5678"}, "trigger_id": {"13345224609.738474920.8088930838d88f008e0"}}
	body := form.Encode()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, a.URL+"/v1/slack/commands", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(slack.HeaderTimestamp, stamp)
	if key != "" {
		req.Header.Set(slack.HeaderSignature, slack.Sign(key, stamp, []byte(body)))
	}
	return heraldtest.Send(t, req)
}

// Long on purpose: one app, then its table of signed and unsigned requests.
func TestSlashCommandSignatures(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0SHOP", "shop-alerts")
	s.AddChannel("C0ONCALL", "oncall")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(slashConfig(s)))
	subscriptions := func() int { return count(t, a.Bus, "notifications.subscription_*.>") }

	tests := []struct {
		name   string
		ts     time.Time
		key    string
		status int
		code   string
	}{
		{"bad signature", time.Now(), "not-the-secret", http.StatusUnauthorized, "invalid_signature"},
		{"stale", time.Now().Add(-6 * time.Minute), secret, http.StatusUnauthorized, "stale_request"},
		{"from the future", time.Now().Add(6 * time.Minute), secret, http.StatusUnauthorized, "stale_request"},
		{"unsigned", time.Now(), "", http.StatusUnauthorized, "invalid_signature"},
		{"good", time.Now().Add(-4 * time.Minute), secret, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := subscriptions()
			r := command(t, a, "subscribe app=shop severity>=P2", "C0SHOP", tt.ts, tt.key)
			if r.Status != tt.status {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if tt.code != "" {
				if got := r.JSON(t)["error"]; got != tt.code {
					t.Errorf("error %v: %s", got, r.Body)
				}
				if subscriptions() != before {
					t.Error("a refused command recorded something")
				}
				return
			}
			body := r.JSON(t)
			if body["response_type"] != "in_channel" || !strings.Contains(body["text"].(string), "subscribed this channel to app=shop severity>=P2") {
				t.Errorf("answer %s", r.Body)
			}
			subs := ledger[event.SubscriptionCreated](t, a.Bus)
			if len(subs) != 1 || subs[0].Channel != "C0SHOP" || subs[0].Via != "slack" || subs[0].By != "U2147483697" ||
				subs[0].Match != (event.SubscriptionMatch{App: "shop", Severity: ">=P2"}) {
				t.Errorf("subscription events %+v", subs)
			}
		})
	}

	// The subscription routes the shop's incidents to the channel.
	newIncident(t, a.As(t, access.Incident), "inc-5ab5000000000001", "P2", map[string]string{"app": "shop"}).open()
	if c := waitCalls(t, s, 1, 5*time.Second)[0]; c.Channel != "C0SHOP" || !strings.HasPrefix(c.Text, "[P2]") {
		t.Errorf("post %s", describe([]heraldtest.SlackCall{c}))
	}
	now := time.Now()
	r := command(t, a, "incidents", "C0SHOP", now, secret).JSON(t)
	if r["response_type"] != "ephemeral" || !strings.Contains(r["text"].(string), "1 open incident(s)") ||
		!strings.Contains(r["text"].(string), "inc-5ab5000000000001") {
		t.Errorf("incidents: %v", r)
	}
	r = command(t, a, "subscribe app=shop severity>=P2", "C0SHOP", now, secret).JSON(t)
	if !strings.Contains(r["text"].(string), "already gets") {
		t.Errorf("subscribing twice: %v", r)
	}
	r = command(t, a, "subscribe colour=red", "C0SHOP", now, secret).JSON(t)
	if r["response_type"] != "ephemeral" || !strings.Contains(r["text"].(string), `unknown filter "colour"`) {
		t.Errorf("bad filter: %v", r)
	}
	r = command(t, a, "unsubscribe app=shop severity>=P2", "C0OTHER", now, secret).JSON(t)
	if !strings.Contains(r["text"].(string), "no such subscription") {
		t.Errorf("another channel unsubscribed this one: %v", r)
	}
	r = command(t, a, "unsubscribe severity>=P2 app=shop", "C0SHOP", now, secret).JSON(t)
	if r["response_type"] != "in_channel" || !strings.Contains(r["text"].(string), "unsubscribed this channel from app=shop severity>=P2") {
		t.Errorf("unsubscribe: %v", r)
	}
	if removed := ledger[event.SubscriptionRemoved](t, a.Bus); len(removed) != 1 || removed[0].Via != "slack" {
		t.Errorf("removed %+v", removed)
	}
	r = command(t, a, "frobnicate", "C0SHOP", now, secret).JSON(t)
	if !strings.Contains(r["text"].(string), "Unknown command") || !strings.Contains(r["text"].(string), "Usage") {
		t.Errorf("unknown command: %v", r)
	}
}

func TestSubscriptionsAPI(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0BANK", "bank")
	s.AddChannel("C0ONCALL", "oncall")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(slashConfig(s)))

	body := map[string]any{"channel": "C0BANK", "match": map[string]string{"app": "bank", "severity": ">=P2"}, "by": "ops@bank"}
	r := a.Do(t, "POST", "/v1/subscriptions", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["subscription"].(map[string]any)["id"].(string)
	if r := a.Do(t, "POST", "/v1/subscriptions", body); r.Status != http.StatusOK || r.JSON(t)["created"] != false {
		t.Errorf("again: %d %s", r.Status, r.Body)
	}
	for _, bad := range []struct {
		body any
		code string
	}{
		{map[string]any{"channel": "bank", "match": map[string]string{}}, "invalid_channel"},
		{map[string]any{"channel": "C0BANK", "match": map[string]string{"severity": "urgent"}}, "invalid_match"},
		{map[string]any{"channel": "C0BANK", "match": map[string]string{"colour": "red"}}, "invalid_json"},
		{`{"channel":`, "invalid_json"},
	} {
		if r := a.Do(t, "POST", "/v1/subscriptions", bad.body); r.Status != http.StatusBadRequest || r.JSON(t)["error"] != bad.code {
			t.Errorf("%v: %d %s", bad.body, r.Status, r.Body)
		}
	}
	if r := a.Do(t, "GET", "/v1/subscriptions?channel=C0BANK", nil); !strings.Contains(string(r.Body), id) {
		t.Errorf("list: %s", r.Body)
	}

	// A P3 does not match; its escalation to P2 does: the channel joins then.
	inc := newIncident(t, a.As(t, access.Incident), "inc-ba4c000000000001", "P3", map[string]string{"app": "bank"}).open()
	heraldtest.Eventually(t, 5*time.Second, "the opening's routing decision", func() bool {
		return count(t, a.Bus, "notifications.notification_routed.inc-ba4c000000000001.>") == 1
	})
	if r := ledger[event.NotificationRouted](t, a.Bus); len(r) != 1 || len(r[0].Destinations) != 0 {
		t.Fatalf("the P3 opening was routed: %+v", r)
	}
	inc.escalate("P2")
	calls := waitCalls(t, s, 1, 5*time.Second)
	if c := calls[0]; c.Channel != "C0BANK" || !strings.HasPrefix(c.Text, "[P2]") || c.ThreadTS != "" {
		t.Errorf("join on escalation:%s", describe(calls))
	}
	inc.resolve()
	calls = waitCalls(t, s, 3, 5*time.Second)
	if calls[1].Method != "chat.update" || calls[2].ThreadTS != calls[0].TS || !strings.HasPrefix(calls[2].Text, "Resolved") {
		t.Errorf("resolve:%s", describe(calls))
	}

	if r := a.Do(t, "DELETE", "/v1/subscriptions/"+id, nil); r.Status != http.StatusOK {
		t.Errorf("delete: %d %s", r.Status, r.Body)
	}
	if r := a.Do(t, "DELETE", "/v1/subscriptions/"+id, nil); r.Status != http.StatusNotFound || r.JSON(t)["error"] != "unknown_subscription" {
		t.Errorf("delete again: %d %s", r.Status, r.Body)
	}
	// Subscriptions are rebuilt from the log.
	a.Restart(t)
	if r := a.Do(t, "GET", "/v1/subscriptions", nil); strings.Contains(string(r.Body), id) {
		t.Errorf("a removed subscription came back: %s", r.Body)
	}
	if r := a.Do(t, "POST", "/v1/subscriptions", body); r.Status != http.StatusCreated {
		t.Errorf("re-subscribing after removal: %d %s", r.Status, r.Body)
	}
}
