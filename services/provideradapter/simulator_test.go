package provideradapter_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

const testNumber = "+919999900001"

func TestATestNumberRoutedToARealProviderIsAnsweredByTheSimulatorWithItsFixedCodeAndNoLimit(t *testing.T) {
	r := startRig(t, "")
	// limited allows 2 sends per phone in a minute; its test number has none.
	for i := range 4 {
		resp := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "limited", "phone": testNumber})
		if resp.Status != http.StatusOK || resp.JSON(t)["provider"] != "sim" {
			t.Fatalf("send %d: %d %s", i, resp.Status, resp.Body)
		}
		rid := requestID(t, resp)
		es := r.events(t, rid)
		if pr := find[event.ProviderResponseReceived](t, es); pr.Provider != "sim" {
			t.Errorf("provider_response_received from %q, want sim", pr.Provider)
		}
		if v := r.verify(t, rid, "4242424242"); v.Status != http.StatusOK {
			t.Fatalf("verify the fixed code: %d %s", v.Status, v.Body)
		}
	}
	if n := len(r.f2s.Requests()); n != 0 {
		t.Fatalf("fast2sms got %d requests for a test number", n)
	}
	// Another number of the same app still goes to fast2sms, limited, and
	// the simulator's outbox never shows a real provider's message.
	body := map[string]string{"app": "limited", "phone": phone()}
	for i, want := range []int{200, 200, 429} {
		if resp := r.Do(t, "POST", "/v1/otp/send", body); resp.Status != want {
			t.Fatalf("real number send %d: %d %s, want %d", i, resp.Status, resp.Body, want)
		}
	}
	if n := len(r.f2s.Requests()); n != 2 {
		t.Errorf("fast2sms got %d requests, want 2", n)
	}
	out := r.Do(t, "GET", "/v1/simulator/outbox", nil)
	msgs, _ := out.JSON(t)["messages"].([]any)
	if len(msgs) != 4 {
		t.Fatalf("outbox has %d messages, want the 4 to the test number: %s", len(msgs), out.Body)
	}
	for _, m := range msgs {
		if text := m.(map[string]any)["text"].(string); !strings.Contains(text, "4242424242") {
			t.Errorf("outbox text %q lacks the fixed code", text)
		}
	}
}

// demoWithLimits is the demo app with a tight per-app limit.
const demoWithLimits = `
apps:
  demo:
    deliveryPolicy: quick_only
    providers: [sim]
    perApp: {rate: 0.001, burst: 1}
    testNumbers: {"+919999900001": "123456"}
providers:
  sim: {retries: 0}
`

func TestTheSimulatorsModeSwitchesAtRunTime(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithConfig(demoWithLimits))
	send := func(phone string) (int, map[string]any) {
		resp := a.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "demo", "phone": phone})
		return resp.Status, resp.JSON(t)
	}
	if st, j := send("+919876500001"); st != 200 {
		t.Fatalf("first send: %d %v", st, j)
	}
	if st, j := send("+919876500002"); st != 429 || j["error"] != "rate_limited" {
		t.Fatalf("over the app's limit: %d %v", st, j)
	}
	if j := a.Do(t, "GET", "/v1/simulator", nil).JSON(t); j["simulator"].(map[string]any)["mode"] != "ok" {
		t.Fatalf("default mode: %v", j)
	}
	for _, c := range []struct {
		mode   map[string]any
		status int
		answer string // the send's error or status
	}{
		{map[string]any{"mode": "fail", "classification": "payment_required"}, 502, "sms_failed"},
		{map[string]any{"mode": "flaky", "rate": 1}, 502, "sms_failed"},
		{map[string]any{"mode": "slow", "latency": "50ms"}, 200, "sent"},
		{map[string]any{"mode": "ok"}, 200, "sent"},
	} {
		set := a.Do(t, "PUT", "/v1/simulator", c.mode)
		if set.Status != 200 || set.JSON(t)["simulator"].(map[string]any)["mode"] != c.mode["mode"] {
			t.Fatalf("PUT %v: %d %s", c.mode, set.Status, set.Body)
		}
		// The test number: exempt from the app's limit, answered in the mode.
		st, j := send(testNumber)
		got, _ := j["error"].(string)
		if got == "" {
			got, _ = j["status"].(string)
		}
		if st != c.status || got != c.answer {
			t.Errorf("mode %v: send %d %v, want %d %s", c.mode, st, j, c.status, c.answer)
		}
	}
	for _, bad := range []map[string]any{
		{"mode": "broken"}, {"mode": "fail", "classification": "ok"}, {"mode": "ok", "rate": 0.5},
		{"mode": "slow", "latency": "forever"}, {"mode": "flaky", "rate": 2},
	} {
		if resp := a.Do(t, "PUT", "/v1/simulator", bad); resp.Status != 400 || resp.JSON(t)["error"] != "invalid_simulator_mode" {
			t.Errorf("PUT %v: %d %s, want 400 invalid_simulator_mode", bad, resp.Status, resp.Body)
		}
	}
	// Not demo mode (an app is configured): only the test number's messages
	// are in the outbox, newest first, each with the answer it got.
	msgs := a.Do(t, "GET", "/v1/simulator/outbox", nil).JSON(t)["messages"].([]any)
	var classes []string
	for _, m := range msgs {
		mm := m.(map[string]any)
		if !strings.Contains(mm["text"].(string), "123456") || !strings.HasSuffix(mm["to"].(string), "0001") {
			t.Errorf("outbox entry %v", mm)
		}
		classes = append(classes, mm["classification"].(string))
	}
	if got := strings.Join(classes, " "); got != "ok ok transient payment_required" {
		t.Errorf("outbox answers %q", got)
	}
}
