package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

// TestAFlappingStripeKeyIsHeldInOneSlackThread runs the README's stripe
// 401, classified by Herald, failing and working by turns, through the
// whole platform (the default rule with a one-second flap window): three
// incidents come and go, the fourth is held open as flapping in its one
// thread, and resolves once the key has worked for the window. The messages show the
// classification and its reason, and no empty fragment.
func TestAFlappingStripeKeyIsHeldInOneSlackThread(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	a := apptest.StartApp(t, apptest.WithConfig(fmt.Sprintf(`
incident:
  tickInterval: 20ms
  rules: # the default rule, with a flap window of a second of wall clock
    - name: integration-payment-required
      kind: match
      summary: "{integration}: subscription unpaid or credentials refused"
      match:
        types: [integration_call_completed]
        where: ["classification in [payment_required, provider_auth]"]
      clear:
        types: [integration_call_completed]
        where: ["statusCode >= 200", "statusCode < 300"]
      groupBy: [integration]
      severities: [{level: P2}]
      flap: {maxCycles: 3, window: 1s}
notifier:
  slack: {apiURL: %q, botToken: %q}
  rateLimit: {perSecond: 50, burst: 5}
  routes: [{name: all, channels: [C0OPS]}]
`, s.APIURL, s.Token)))
	// 401, 200, 401, 200, … in one batch (Herald stamps them as it takes
	// them in): four cycles within the second.
	var batch []map[string]any
	for i := range 10 {
		code := 401
		if i%2 == 1 {
			code = 200
		}
		batch = append(batch, map[string]any{"specversion": "1.0", "id": fmt.Sprintf("call-%d", i), "type": "integration_call_completed",
			"source": "shop", "data": map[string]any{"integration": "stripe", "operation": "charges.create", "statusCode": code, "latencyMs": 50}})
	}
	if r := a.Do(t, "POST", "/v1/events", batch); r.Status/100 != 2 {
		t.Fatalf("POST /v1/events: %d %s", r.Status, r.Body)
	}
	var held string
	var body []byte
	defer func() {
		if t.Failed() {
			t.Logf("last /v1/incidents: %s", body)
		}
	}()
	heraldtest.Eventually(t, 20*time.Second, "four resolved incidents of integration-payment-required", func() bool {
		r := a.Do(t, "GET", "/v1/incidents?rule=integration-payment-required", nil)
		body = r.Body
		var p struct {
			Incidents []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"incidents"`
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &p) != nil || len(p.Incidents) != 4 {
			return false
		}
		held = p.Incidents[0].ID // newest first: the held one
		for _, i := range p.Incidents {
			if i.State != "resolved" {
				return false
			}
		}
		return true
	})
	r := a.Do(t, "GET", "/v1/incidents/"+held, nil)
	var inc struct {
		Transitions []struct {
			Flapping bool `json:"flapping"`
		} `json:"transitions"`
	}
	if err := json.Unmarshal(r.Body, &inc); err != nil || len(inc.Transitions) != 3 || !inc.Transitions[1].Flapping {
		t.Fatalf("held incident: %v %s", err, r.Body)
	}
	// Slack: four roots; the held one's thread has the flapping reply and the resolution.
	var roots, threadOf4 []heraldtest.SlackCall
	heraldtest.Eventually(t, 10*time.Second, "every Slack post", func() bool {
		roots, threadOf4 = nil, nil
		var last string
		for _, c := range s.AcceptedCalls() {
			if c.Method == "chat.postMessage" && c.ThreadTS == "" {
				roots, last = append(roots, c), c.TS
			}
		}
		for _, c := range s.AcceptedCalls() {
			if c.Method == "chat.postMessage" && c.ThreadTS != "" && c.ThreadTS == last {
				threadOf4 = append(threadOf4, c)
			}
		}
		return len(roots) == 4 && len(threadOf4) == 2
	})
	if !strings.Contains(string(threadOf4[0].Blocks), "Flapping") || !strings.Contains(string(threadOf4[1].Blocks), "Resolved") {
		t.Errorf("the held incident's thread: %s / %s", threadOf4[0].Blocks, threadOf4[1].Blocks)
	}
	const reason = "payment_required — Stripe refuses the account's API keys (401)"
	if !strings.Contains(roots[0].Text, reason) {
		t.Errorf("root %q lacks %q", roots[0].Text, reason)
	}
	for _, c := range s.AcceptedCalls() {
		for _, text := range []string{c.Text, string(c.Blocks)} {
			if strings.Contains(text, "over  ") || strings.Contains(text, "over —") || strings.Contains(text, `over "`) {
				t.Errorf("%s has an empty fragment: %s", c.Method, text)
			}
		}
	}
}
