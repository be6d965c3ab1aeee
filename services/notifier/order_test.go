package notifier_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

// A's root post is answered 429 once or several times in a row, each
// time while it is in flight other incidents open and A moves on. A keeps
// its turn: after the last pause its root is the first post, and the
// channel's incidents follow in the order they opened.
// Long on purpose: one scenario, told step by step in the order it happens.
func TestARateLimitedIncidentKeepsItsTurnWhateverArrivesMeanwhile(t *testing.T) {
	for _, storms := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d 429s", storms), func(t *testing.T) {
			b := heraldtest.JetStream(t)
			s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0), heraldtest.WithRetryAfter(1))
			s.AddChannel("C0STORM", "storm")
			s.AddChannel("C0CALM", "calm")
			cfg := webAPIConfig(s)
			cfg.Routes = []notifier.Route{{Name: "calm", Match: event.SubscriptionMatch{App: "calm"}, Channels: []string{"C0CALM"}}}
			for _, app := range []string{"a", "o0", "o1", "o2"} {
				cfg.Routes = append(cfg.Routes, notifier.Route{Name: app, Match: event.SubscriptionMatch{App: app},
					Channels: []string{"C0STORM"}})
			}
			start(t, b, cfg, nil)
			s.Storm("C0STORM", storms)

			a := newIncident(t, b, "inc-a0a0000000000001", "P3", map[string]string{"app": "a"})
			want := []string{"app=a"}
			routed := 0
			sev := []string{"P2", "P1"}
			for k := range storms {
				arrived, release := s.Hold("C0STORM")
				if k == 0 {
					a.open()
					routed++
				}
				<-arrived
				app := fmt.Sprintf("o%d", k)
				newIncident(t, b, fmt.Sprintf("inc-0%015d", k), "P3", map[string]string{"app": app}).open()
				want = append(want, "app="+app)
				routed++
				if k < len(sev) {
					a.escalate(sev[k])
					routed++
				}
				// The notifier handles transitions one at a time: once this
				// one is routed, everything before it was handed to the
				// workers.
				newIncident(t, b, fmt.Sprintf("inc-ca1a%012d", k), "P3", map[string]string{"app": "calm"}).open()
				routed++
				heraldtest.Eventually(t, 5*time.Second, "every transition routed", func() bool {
					return count(t, b, "notifications.notification_routed.>") == routed
				})
				release()
			}

			heraldtest.Eventually(t, 10*time.Second, "every root in the stormy channel", func() bool {
				n := 0
				for _, c := range s.AcceptedCalls() {
					if c.Channel == "C0STORM" && c.Method == "chat.postMessage" && c.ThreadTS == "" {
						n++
					}
				}
				return n == len(want)
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
					roots = append(roots, c.Text[strings.Index(c.Text, "(")+1:strings.Index(c.Text, ")")])
					if len(roots) == 1 && c.Time.Sub(limited) < time.Second {
						t.Errorf("A's root came %s after the last 429, before Retry-After", c.Time.Sub(limited))
					}
				}
			}
			if strings.Join(roots, "|") != strings.Join(want, "|") {
				t.Errorf("roots after the 429s in the order\n  %s\nwant\n  %s%s", strings.Join(roots, "|"),
					strings.Join(want, "|"), describe(s.Calls()))
			}
			if v := s.RetryAfterViolations(); len(v) > 0 {
				t.Errorf("Retry-After not respected: %v", v)
			}
		})
	}
}
