package notifier_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

// Long on purpose: one scenario, told step by step in the order it happens.
func TestRestartMidStreamPostsNothingTwice(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	cfg := webAPIConfig(s, "C0OPS")

	n1 := start(t, b, cfg, nil)
	a := newIncident(t, b, "inc-aaaa000000000001", "P2", map[string]string{"app": "shop"}).open()
	c := newIncident(t, b, "inc-cccc000000000003", "P3", map[string]string{"app": "bank"}).open()
	waitCalls(t, s, 2, 5*time.Second)
	a.escalate("P1")
	waitCalls(t, s, 4, 5*time.Second)
	stop(t, n1)

	// While no notifier runs, the incidents move on.
	a.resolve()
	c.escalate("P2")
	if got := len(s.Calls()); got != 4 {
		t.Fatalf("%d calls with no notifier running:%s", got, describe(s.Calls()))
	}

	n2 := start(t, b, cfg, nil)
	waitCalls(t, s, 8, 5*time.Second)
	calls := flush(t, b, b, s, 1)
	stop(t, n2)

	// A third start, and a rebuild, find nothing left to do.
	start(t, b, cfg, nil)
	if again := flush(t, b, b, s, 1); len(again) != len(calls) {
		t.Errorf("the third start sent again:%s", describe(again[len(calls):]))
	}

	roots := map[string]string{}
	replies := map[string]int{}
	for _, c := range calls {
		switch {
		case c.Method == "chat.postMessage" && c.ThreadTS == "":
			inc := incidentIn(c.Text)
			if roots[inc] != "" {
				t.Errorf("%s posted twice:%s", inc, describe(calls))
			}
			roots[inc] = c.TS
		case c.Method == "chat.postMessage":
			replies[c.ThreadTS+" "+c.Text]++
		}
	}
	if len(roots) != 2 {
		t.Errorf("roots %v", roots)
	}
	for k, v := range replies {
		if v != 1 {
			t.Errorf("reply %q sent %d times", k, v)
		}
	}
	if len(replies) != 3 {
		t.Errorf("%d distinct replies, want 3 (a escalated, a resolved, c escalated):%s", len(replies), describe(calls))
	}
	st, err := notifier.Rebuild(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Lanes {
		if step := st.Next(l, notifier.Caps{Edit: true, Thread: true}); step != nil {
			t.Errorf("rebuilt lane %s/%s still has a step: %+v", l.Incident, l.Dest, step)
		}
	}
	if st.Posted != 5+2 || st.Updated != 3 { // and the two sentinels' roots
		t.Errorf("rebuilt ledger: %d posted, %d updated", st.Posted, st.Updated)
	}
}

// incidentIn finds the incident a root message is about from its fallback.
func incidentIn(text string) string {
	if strings.Contains(text, "(app=shop)") {
		return "shop"
	}
	return "bank"
}

func TestRateLimitStormDeliversEveryTransitionInOrderAndRespectsRetryAfter(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0), heraldtest.WithRetryAfter(1))
	s.AddChannel("C0STORM", "storm")
	s.AddChannel("C0CALM", "calm")
	cfg := webAPIConfig(s)
	cfg.Routes = []notifier.Route{
		{Name: "shop", Match: event.SubscriptionMatch{App: "shop"}, Channels: []string{"C0STORM"}},
		{Name: "bank", Match: event.SubscriptionMatch{App: "bank"}, Channels: []string{"C0CALM"}},
		sentinelRoute("C0STORM", "C0CALM"),
	}
	start(t, b, cfg, nil)
	s.Storm("C0STORM", 2)

	newIncident(t, b, "inc-5707000000000001", "P3", map[string]string{"app": "shop"}).open().escalate("P2").escalate("P1").resolve()
	newIncident(t, b, "inc-ca1a000000000002", "P3", map[string]string{"app": "bank"}).open().escalate("P2").escalate("P1").resolve()

	heraldtest.Eventually(t, 10*time.Second, "both channels' resolves", func() bool {
		return finished(s.AcceptedCalls(), "C0CALM") && finished(s.AcceptedCalls(), "C0STORM")
	})
	calls := flush(t, b, b, s, 2)

	if v := s.RetryAfterViolations(); len(v) > 0 {
		t.Errorf("Retry-After not respected: %v", v)
	}
	var limited []time.Time
	var first, calmDone time.Time
	for _, c := range calls {
		if c.Channel == "C0STORM" && c.Status == http.StatusTooManyRequests {
			limited = append(limited, c.Time)
		}
		if c.Channel == "C0STORM" && c.Accepted() && first.IsZero() {
			first = c.Time
		}
		if c.Channel == "C0CALM" && c.Accepted() && finished([]heraldtest.SlackCall{c}, "C0CALM") {
			calmDone = c.Time
		}
	}
	// The calm channel is not held up by the storm next door: it has told
	// the whole story before the stormy channel's Retry-After let its
	// first call through.
	if !calmDone.Before(first) {
		t.Errorf("the calm channel resolved at %s, after the stormy channel's first accepted call at %s: held up by the storm",
			calmDone.Format("15:04:05.000"), first.Format("15:04:05.000"))
	}
	if len(limited) != 2 || first.Sub(limited[1]) < time.Second {
		t.Errorf("429s at %v, first accepted at %v: want 2 answers 429 and the next call ≥1s after the last", limited, first)
	}
	checkStory(t, accepted(calls), "C0STORM", "shop")
	checkStory(t, accepted(calls), "C0CALM", "bank")
}

// finished reports whether a channel got an incident's resolve reply.
func finished(calls []heraldtest.SlackCall, channel string) bool {
	for _, c := range calls {
		if c.Channel == channel && c.ThreadTS != "" && strings.HasPrefix(c.Text, "Resolved") {
			return true
		}
	}
	return false
}

// checkStory checks one incident's calls in a channel: one root post,
// first; then edits of it and one reply per transition, in order; the last
// edit (or the root) shows the resolved state.
func checkStory(t *testing.T, calls []heraldtest.SlackCall, channel, app string) {
	t.Helper()
	var mine []heraldtest.SlackCall
	for _, c := range calls {
		if c.Channel == channel {
			mine = append(mine, c)
		}
	}
	if len(mine) == 0 || mine[0].Method != "chat.postMessage" || mine[0].ThreadTS != "" {
		t.Fatalf("%s: the first call is not the root post:%s", channel, describe(mine))
	}
	root, last := mine[0].TS, mine[0].Text
	var replies []string
	for _, c := range mine[1:] {
		switch {
		case c.Method == "chat.update" && c.TS == root:
			last = c.Text
		case c.Method == "chat.postMessage" && c.ThreadTS == root:
			replies = append(replies, c.Text[:strings.Index(c.Text, " at ")])
		default:
			t.Errorf("%s: unexpected call %s", channel, describe([]heraldtest.SlackCall{c}))
		}
	}
	want := []string{
		"Escalated otp-failure-rate (app=" + app + ") P3 → P2",
		"Escalated otp-failure-rate (app=" + app + ") P2 → P1",
		"Resolved otp-failure-rate (app=" + app + ")",
	}
	if strings.Join(replies, "|") != strings.Join(want, "|") {
		t.Errorf("%s: replies\n  %q\nwant\n  %q", channel, replies, want)
	}
	if !strings.HasPrefix(last, "[resolved]") {
		t.Errorf("%s: the root message ends as %q", channel, last)
	}
}

func TestStaysUnderTheChannelRateLimit(t *testing.T) {
	b := heraldtest.JetStream(t)
	// Slack allows a little more than the notifier's setting: requests
	// spaced exactly at the limit may arrive a little closer together.
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(10, 3))
	s.AddChannel("C0BUSY", "busy")
	cfg := webAPIConfig(s, "C0BUSY")
	cfg.RateLimit.PerSecond, cfg.RateLimit.Burst = 10, 2
	start(t, b, cfg, nil)
	for i := range 8 {
		newIncident(t, b, "inc-b05e00000000000"+string(rune('0'+i)), "P2", map[string]string{"app": "shop"}).open()
	}
	waitCalls(t, s, 8, 5*time.Second)
	for _, c := range s.Calls() {
		if !c.Accepted() {
			t.Errorf("refused: %s", describe([]heraldtest.SlackCall{c}))
		}
	}
}

func TestPermanentErrorsAreNotRetriedAndAreSurfaced(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(s *heraldtest.Slack)
		channel string
		code    string
	}{
		{"msg_too_long", func(s *heraldtest.Slack) { s.FailWith("C0OPS", "msg_too_long") }, "C0OPS", "msg_too_long"},
		{"not_in_channel", func(s *heraldtest.Slack) { s.NotInChannel("C0OPS") }, "C0OPS", "not_in_channel"},
		{"channel_not_found", func(*heraldtest.Slack) {}, "#archived", "channel_not_found"},
		{"invalid_blocks", func(s *heraldtest.Slack) { s.FailWith("C0OPS", "invalid_blocks") }, "C0OPS", "invalid_blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := heraldtest.JetStream(t)
			s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
			s.AddChannel("C0OPS", "ops")
			cfg := webAPIConfig(s, tt.channel)
			tt.setup(s)
			reg := prometheus.NewRegistry()
			n, err := notifier.New(cfg, notifier.Deps{Bus: b, Log: heraldtest.Logger(t), Registry: reg})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stop(t, n) })

			newIncident(t, b, "inc-fa11000000000001", "P1", map[string]string{"app": "shop"}).open()
			heraldtest.Eventually(t, 5*time.Second, "the failure in the ledger", func() bool {
				return count(t, b, "notifications.notification_failed.>") == 1
			})
			// Read before the sentinel, which fails in some cases too.
			if v := testutil.ToFloat64(mustCounter(t, reg, "herald_notifier_failures_total", tt.code)); v != 1 {
				t.Errorf("failures metric %v", v)
			}
			f := ledger[event.NotificationFailed](t, b)[0]
			if f.Error != tt.code || f.Action != "root" || f.Transition != "opened" || f.Destination != tt.channel ||
				f.Mode != "web_api" || f.Status != http.StatusOK {
				t.Errorf("notification_failed %+v", f)
			}
			// A step recorded as failed is not sent again: had it been
			// queued again, it would have gone before the sentinel.
			if calls := flush(t, b, b, s, 1); len(calls) != 1 || calls[0].Error != tt.code {
				t.Errorf("calls:%s", describe(calls))
			}
			if got := count(t, b, "notifications.slack_message_posted.inc-fa11000000000001.>"); got != 0 {
				t.Errorf("%d posted entries", got)
			}
		})
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name, code string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "error" && l.GetValue() == code {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no %s{error=%q}", name, code)
	return nil
}

func TestServerErrorsAreRetriedWithBackoff(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	s.ServerErrors("C0OPS", 2)
	start(t, b, webAPIConfig(s, "C0OPS"), nil)
	newIncident(t, b, "inc-5e4e000000000001", "P2", map[string]string{"app": "shop"}).open()
	heraldtest.Eventually(t, 5*time.Second, "the post in the ledger", func() bool {
		return count(t, b, "notifications.slack_message_posted.>") == 1
	})
	// A 500 may come after Slack posted: before the retry the notifier
	// looks for the message in the channel's history (the fake's second
	// 500 answers that look-up, which is retried in its turn).
	calls := flush(t, b, b, s, 1)
	var got []string
	for _, c := range calls {
		got = append(got, fmt.Sprintf("%s %d", c.Method, c.Status))
	}
	want := "chat.postMessage 500,conversations.history 500,conversations.history 200,chat.postMessage 200"
	if strings.Join(got, ",") != want {
		t.Fatalf("calls:%s\nwant %s", describe(calls), want)
	}
	if gap := calls[2].Time.Sub(calls[1].Time); gap < 20*time.Millisecond { // 50ms ± 50% jitter, then 100ms ± 50%
		t.Errorf("retried after %s: no backoff", gap)
	}
	if n := count(t, b, "notifications.slack_message_posted.inc-5e4e000000000001.>"); n != 1 {
		t.Errorf("%d posted entries", n)
	}
}

func TestPendingEditsCoalesceButEveryReplyIsSent(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0), heraldtest.WithRetryAfter(1))
	s.AddChannel("C0OPS", "ops")
	start(t, b, webAPIConfig(s, "C0OPS"), nil)
	inc := newIncident(t, b, "inc-c0a1000000000001", "P3", map[string]string{"app": "shop"}).open()
	waitCalls(t, s, 1, 5*time.Second)
	s.Storm("C0OPS", 1) // the next call waits a second: transitions pile up meanwhile
	inc.escalate("P2").escalate("P1").resolve()
	// The 429 paused the workspace's edits; the replies need not wait.
	heraldtest.Eventually(t, 5*time.Second, "the resolve reply and the edit", func() bool {
		calls := s.AcceptedCalls()
		edited := slices.ContainsFunc(calls, func(c heraldtest.SlackCall) bool {
			return c.Method == "chat.update" && strings.HasPrefix(c.Text, "[resolved]")
		})
		return finished(calls, "C0OPS") && edited
	})
	calls := accepted(flush(t, b, b, s, 1))
	updates := 0
	for _, c := range calls {
		if c.Method == "chat.update" {
			updates++
		}
	}
	if updates != 1 {
		t.Errorf("%d edits, want 1 (three pending edits coalesced):%s", updates, describe(calls))
	}
	checkStory(t, calls, "C0OPS", "shop")
}

func TestAnIncidentInBackoffDoesNotHoldUpAnotherInTheSameChannel(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	cfg := webAPIConfig(s, "C0OPS")
	cfg.Retry.Initial, cfg.Retry.Max = cfgDuration(time.Second), cfgDuration(time.Second)
	start(t, b, cfg, nil)
	s.ServerErrors("C0OPS", 1)
	newIncident(t, b, "inc-a000000000000001", "P2", map[string]string{"app": "shop"}).open()
	heraldtest.Eventually(t, 5*time.Second, "the 500", func() bool { return len(s.Calls()) == 1 })
	failed := s.Calls()[0].Time
	newIncident(t, b, "inc-b000000000000002", "P2", map[string]string{"app": "bank"}).open()
	calls := waitCalls(t, s, 2, 5*time.Second)
	// The retry is a second away: the other incident goes first.
	if !strings.Contains(calls[0].Text, "app=bank") {
		t.Errorf("the second incident waited for the first one's backoff:%s", describe(s.Calls()))
	}
	if !strings.Contains(calls[1].Text, "app=shop") || calls[1].Time.Sub(failed) < 500*time.Millisecond {
		t.Errorf("the first incident was not retried after its backoff:%s", describe(s.Calls()))
	}
}
