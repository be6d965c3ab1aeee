package notifier_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

func cfgDuration(d time.Duration) config.Duration { return config.Duration(d) }

// Long on purpose: one scenario, told step by step in the order it happens.
func TestOpenEscalateResolvePostsOnceThenEditsAndRepliesInOrder(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0SHOP", "shop-alerts")
	start(t, b, webAPIConfig(s, "#shop-alerts"), nil)

	inc := newIncident(t, b, "inc-0000aaaa11112222", "P2", map[string]string{"app": "shop", "provider": "fast2sms"}).open()
	waitCalls(t, s, 1, 5*time.Second)
	inc.escalate("P1")
	waitCalls(t, s, 3, 5*time.Second)
	inc.resolve()
	waitCalls(t, s, 5, 5*time.Second)
	calls := flush(t, b, b, s, 1)

	root := calls[0]
	want := []struct {
		method, thread string
		broadcast      bool
		text           string
	}{
		{"chat.postMessage", "", false, "[P2] otp-failure-rate (app=shop provider=fast2sms): shop: 23% of OTP sends failing"},
		{"chat.update", "", false, "[P1] otp-failure-rate"},
		{"chat.postMessage", root.TS, true, "Escalated otp-failure-rate (app=shop provider=fast2sms) P2 → P1"},
		{"chat.update", "", false, "[resolved] otp-failure-rate"},
		{"chat.postMessage", root.TS, true, "Resolved otp-failure-rate (app=shop provider=fast2sms) at 2026-11-22 10:20:00 UTC after 20m, peak P1"},
	}
	if len(calls) != len(want) {
		t.Fatalf("got %d calls, want %d: %s", len(calls), len(want), describe(calls))
	}
	for i, w := range want {
		c := calls[i]
		if c.Method != w.method || c.ThreadTS != w.thread || c.Broadcast != w.broadcast || !strings.HasPrefix(c.Text, w.text) || c.Channel != "C0SHOP" {
			t.Errorf("call %d: got %s thread=%q broadcast=%v text=%q, want %s thread=%q broadcast=%v text %q…",
				i, c.Method, c.ThreadTS, c.Broadcast, c.Text, w.method, w.thread, w.broadcast, w.text)
		}
		if c.Method == "chat.update" && c.TS != root.TS {
			t.Errorf("call %d edits %s, not the root %s", i, c.TS, root.TS)
		}
	}
	rootText := blocksText(t, root.Blocks)
	for _, s := range []string{"P2 · otp-failure-rate · app=shop provider=fast2sms", "23/100 failed (23%) over 5m0s",
		"<https://herald.dev/runbooks/otp-dlt-outage|Runbook>", "inc-0000aaaa11112222", "<!date^1795341600^"} {
		if !strings.Contains(rootText, s) {
			t.Errorf("root blocks lack %q:\n%s", s, rootText)
		}
	}
	if final := blocksText(t, calls[3].Blocks); !strings.Contains(final, "Resolved · otp-failure-rate") || !strings.Contains(final, "after 20m") ||
		!strings.Contains(final, "peak P1") {
		t.Errorf("resolved root:\n%s", final)
	}

	posted := ledger[event.SlackMessagePosted](t, b)
	updated := ledger[event.SlackMessageUpdated](t, b)
	routed := ledger[event.NotificationRouted](t, b)
	if len(posted) != 3+1 || len(updated) != 2 || len(routed) != 3+1 { // and the sentinel's root
		t.Fatalf("ledger: %d posted, %d updated, %d routed", len(posted), len(updated), len(routed))
	}
	if p := posted[0]; p.Action != "root" || p.Channel != "C0SHOP" || p.TS != root.TS || p.Destination != "#shop-alerts" ||
		p.Transition != "opened" || p.Mode != "web_api" {
		t.Errorf("root ledger entry %+v", p)
	}
	if p := posted[2]; p.Action != "reply" || p.ThreadTS != root.TS || p.Transition != "resolved-2" || !p.Broadcast {
		t.Errorf("resolve reply ledger entry %+v", p)
	}
}
