package notifier_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

// waitRefused waits until the fake has refused n calls with code.
func waitRefused(t testing.TB, s *heraldtest.Slack, code string, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		changed := s.Changed()
		got := 0
		for _, c := range s.Calls() {
			if c.Error == code {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waited %s for %d calls refused with %s:%s", within, n, code, describe(s.Calls()))
		}
	}
}

// fourChannels routes app a1…a4 to channels C0A1…C0A4, one incident each.
func fourChannels(s *heraldtest.Slack) notifier.Config {
	cfg := webAPIConfig(s)
	cfg.Routes = nil
	for _, a := range []string{"a1", "a2", "a3", "a4"} {
		ch := "C0" + strings.ToUpper(a)
		s.AddChannel(ch, a)
		cfg.Routes = append(cfg.Routes, notifier.Route{Name: a, Match: event.SubscriptionMatch{App: a}, Channels: []string{ch}})
	}
	cfg.Routes = append(cfg.Routes, sentinelRoute("C0A1", "C0A2", "C0A3", "C0A4"))
	return cfg
}

// Long on purpose: one scenario, told step by step in the order it happens.
func TestBrokenCredentialsAreRetriedUntilTheyWorkAndNothingIsLost(t *testing.T) {
	tests := []struct {
		code        string
		break_, fix func(s *heraldtest.Slack)
	}{
		{"invalid_auth", func(s *heraldtest.Slack) { s.SetToken("xoxb-rotated") }, func(s *heraldtest.Slack) { s.SetToken("xoxb-herald-test") }},
		{"token_revoked", func(s *heraldtest.Slack) { s.RefuseAuth("token_revoked") }, func(s *heraldtest.Slack) { s.RefuseAuth("") }},
		{"account_inactive", func(s *heraldtest.Slack) { s.RefuseAuth("account_inactive") }, func(s *heraldtest.Slack) { s.RefuseAuth("") }},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			b := heraldtest.JetStream(t)
			s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
			cfg := fourChannels(s)
			n1 := start(t, b, cfg, nil)
			var incs []*incident
			for i, a := range []string{"a1", "a2", "a3"} {
				incs = append(incs, newIncident(t, b, "inc-c4ed00000000000"+string(rune('1'+i)), "P3", map[string]string{"app": a}).open())
			}
			waitCalls(t, s, 3, 5*time.Second)

			// The token stops working while the incidents move on and resolve,
			// and a fourth one opens, escalates and resolves.
			tt.break_(s)
			incs = append(incs, newIncident(t, b, "inc-c4ed000000000004", "P3", map[string]string{"app": "a4"}).open())
			for _, i := range incs {
				i.escalate("P2").escalate("P1").resolve()
			}
			waitRefused(t, s, tt.code, 3, 5*time.Second)
			// A restart while it is broken loses nothing either.
			stop(t, n1)
			if got := count(t, b, "notifications.notification_failed.>"); got != 0 {
				t.Fatalf("%d steps given up while the credentials were broken", got)
			}
			refused := 0
			for _, c := range s.Calls() {
				if c.Error == tt.code {
					refused++
				}
			}
			start(t, b, cfg, nil)
			waitRefused(t, s, tt.code, refused+1, 5*time.Second)

			tt.fix(s)
			for _, a := range []string{"a1", "a2", "a3", "a4"} {
				heraldtest.Eventually(t, 5*time.Second, a+"'s resolve", func() bool {
					return finished(s.AcceptedCalls(), "C0"+strings.ToUpper(a))
				})
			}
			calls := accepted(flush(t, b, b, s, 4))
			// Each channel: one root, edited to the resolve; one reply per
			// transition, in order; nothing twice.
			for _, a := range []string{"a1", "a2", "a3", "a4"} {
				checkStory(t, calls, "C0"+strings.ToUpper(a), a)
			}
			if got := count(t, b, "notifications.notification_failed.>"); got != 0 {
				t.Errorf("%d notification_failed entries", got)
			}
		})
	}
}

func TestStepsGivenUpOnCredentialsByAnOlderVersionAreDeliveredAtStart(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	cfg := webAPIConfig(s, "C0OPS")
	n1 := start(t, b, cfg, nil)
	inc := newIncident(t, b, "inc-01d0000000000001", "P2", map[string]string{"app": "shop"}).open()
	waitCalls(t, s, 1, 5*time.Second)
	stop(t, n1)
	// What a version that gave up on invalid_auth left in the ledger: the
	// resolve routed, its edit and reply recorded as failed.
	inc.resolve()
	ctx := context.Background()
	for _, e := range []event.Data{
		event.NotificationRouted{IncidentID: inc.id, Transition: "resolved-1", Destinations: []string{"C0OPS"}},
		event.NotificationFailed{IncidentID: inc.id, Transition: "resolved-1", Destination: "C0OPS", Action: "update",
			Mode: "web_api", Error: "invalid_auth", Status: 200},
		event.NotificationFailed{IncidentID: inc.id, Transition: "resolved-1", Destination: "C0OPS", Action: "reply",
			Mode: "web_api", Error: "invalid_auth", Status: 200},
	} {
		subj := "notifications." + string(e.EventType()) + "." + inc.id + ".resolved-1"
		if f, ok := e.(event.NotificationFailed); ok {
			subj += ".C0OPS." + f.Action
		}
		if _, err := b.PublishOnce(ctx, event.New("notifier", e, event.WithSubject(subj))); err != nil {
			t.Fatal(err)
		}
	}
	start(t, b, cfg, nil)
	calls := waitCalls(t, s, 3, 5*time.Second)
	if calls[1].Method != "chat.update" || calls[1].TS != calls[0].TS || calls[2].ThreadTS != calls[0].TS {
		t.Errorf("the resolve was not delivered:%s", describe(calls))
	}
}
