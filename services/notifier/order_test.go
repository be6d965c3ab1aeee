package notifier_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

func TestARateLimitedIncidentKeepsItsTurnWhateverArrivesMeanwhile(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0), heraldtest.WithRetryAfter(1))
	s.AddChannel("C0STORM", "storm")
	s.AddChannel("C0CALM", "calm")
	cfg := webAPIConfig(s)
	cfg.Routes = []notifier.Route{
		{Name: "calm", Match: event.SubscriptionMatch{App: "calm"}, Channels: []string{"C0CALM"}},
		{Name: "storm", Match: event.SubscriptionMatch{}, Channels: []string{"C0STORM"}},
	}
	start(t, b, cfg, nil)

	// A's root post is in flight, and answered 429, while B and C open and
	// A moves on.
	s.Storm("C0STORM", 1)
	arrived, release := s.Hold("C0STORM")
	defer release()
	a := newIncident(t, b, "inc-a0a0000000000001", "P3", map[string]string{"app": "a"}).open()
	<-arrived
	newIncident(t, b, "inc-b0b0000000000002", "P3", map[string]string{"app": "b"}).open()
	newIncident(t, b, "inc-c0c0000000000003", "P3", map[string]string{"app": "c"}).open()
	a.escalate("P2")
	// The notifier handles transitions one at a time: once the calm
	// incident is routed, A's escalation has been handed to its worker.
	newIncident(t, b, "inc-ca1a000000000004", "P3", map[string]string{"app": "calm"}).open()
	heraldtest.Eventually(t, 5*time.Second, "every transition routed", func() bool {
		return count(t, b, "notifications.notification_routed.>") == 5
	})
	release()

	heraldtest.Eventually(t, 10*time.Second, "A's escalation reply", func() bool {
		for _, c := range s.AcceptedCalls() {
			if c.Channel == "C0STORM" && c.ThreadTS != "" && strings.Contains(c.Text, "app=a") {
				return true
			}
		}
		return false
	})
	var limited time.Time
	var roots []string
	for _, c := range s.Calls() {
		if c.Channel != "C0STORM" {
			continue
		}
		if c.Status == http.StatusTooManyRequests {
			limited = c.Time
		}
		if c.Accepted() && c.Method == "chat.postMessage" && c.ThreadTS == "" {
			roots = append(roots, c.Text[:strings.Index(c.Text, ")")+1])
			if len(roots) == 1 && c.Time.Sub(limited) < time.Second {
				t.Errorf("A's root came %s after the 429, before Retry-After", c.Time.Sub(limited))
			}
		}
	}
	want := "[P2] otp-failure-rate (app=a)|[P3] otp-failure-rate (app=b)|[P3] otp-failure-rate (app=c)|[P3] otp-failure-rate (app=calm)"
	if strings.Join(roots, "|") != want {
		t.Errorf("roots after the 429 in the order\n  %s\nwant\n  %s%s", strings.Join(roots, "|"), want, describe(s.Calls()))
	}
	if v := s.RetryAfterViolations(); len(v) > 0 {
		t.Errorf("Retry-After not respected: %v", v)
	}

}
