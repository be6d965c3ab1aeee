package notifier_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func groupConfig(s *heraldtest.Slack, wait string) string {
	return fmt.Sprintf(`
notifier:
  slack: {apiURL: %q, botToken: %q, signingSecret: %q}
  groupWait: %s
  rateLimit: {perSecond: 1, burst: 1, update: {perMinute: 6000, burst: 50}}
  routes:
    - {name: all, channels: [C0OPS]}
`, s.APIURL, s.Token, secret, wait)
}

// openNow opens an incident now, as a storm's incidents open.
func (i *incident) openNow() *incident {
	now := time.Now().UTC().Truncate(time.Millisecond)
	i.publish(event.IncidentOpened{IncidentID: i.id, Rule: "otp-failure-rate", Kind: "ratio", Severity: i.sev,
		Group: i.group, OpenedAt: now, Summary: i.group["app"] + ": 23% of OTP sends failing", Evidence: evidence(23, 100)}, now)
	return i
}

func (i *incident) resolveNow() *incident {
	now := time.Now().UTC().Truncate(time.Millisecond)
	i.publish(event.IncidentResolved{IncidentID: i.id, Rule: "otp-failure-rate", Group: i.group, OpenedAt: now.Add(-time.Minute),
		ResolvedAt: now, PeakSeverity: i.peak, Evidence: evidence(0, 100)}, now)
	return i
}

// A storm of 20 incidents opening in one channel within groupWait is one
// root message listing them all, at Slack's pace of one post per second;
// an escalation replies in its thread, an acknowledgement from the shared
// root's buttons and the resolves edit it. A restart in the middle posts
// nothing twice, and a rebuild groups as the live notifier did.
func TestAGroupedStormIsOneRootListingEveryIncident(t *testing.T) {
	const storm = 20
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(1, 1))
	s.AddChannel("C0OPS", "ops")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(groupConfig(s, "2s")))
	pub := a.As(t, access.Incident)
	var incs []*incident
	for k := range storm {
		incs = append(incs, newIncident(t, pub, fmt.Sprintf("inc-9a0%013d", k), "P2",
			map[string]string{"app": fmt.Sprintf("app%02d", k)}).openNow())
	}
	roots := func() []heraldtest.SlackMessage {
		var out []heraldtest.SlackMessage
		for _, m := range s.Messages("C0OPS") {
			if m.ThreadTS == "" {
				out = append(out, m)
			}
		}
		return out
	}
	listing := func(m heraldtest.SlackMessage, text string) bool { return strings.Contains(string(m.Blocks), text) }
	waitSlack(t, s, "one root listing 20 open incidents", func() bool {
		r := roots()
		return len(r) == 1 && listing(r[0], "20 incidents · 20 open")
	})
	root := roots()[0]
	for _, inc := range incs {
		if !listing(root, inc.id) && !listing(root, inc.group["app"]) {
			t.Errorf("the shared root does not list %s", inc.id)
		}
	}

	// An escalation replies in the shared thread, naming its incident.
	incs[3].escalate("P1")
	waitSlack(t, s, "the escalation's reply", func() bool {
		for _, m := range s.Messages("C0OPS") {
			if m.ThreadTS == root.TS && strings.Contains(string(m.Blocks), incs[3].id) {
				return true
			}
		}
		return false
	})
	// An Acknowledge button of the list acknowledges its incident.
	r := heraldtest.SendInteraction(t, a.URL+"/v1/slack/interactions", secret,
		s.Interaction(t, "C0OPS", root.TS, "U0ANA", "herald_ack:2"), time.Now())
	if r.Status != http.StatusOK {
		t.Fatalf("interaction: %d %s", r.Status, r.Body)
	}
	waitSlack(t, s, "the root shows the acknowledgement", func() bool {
		m, _ := s.Message("C0OPS", root.TS)
		return listing(m, "✋ \\u003c@U0ANA")
	})
	if acks := ledger[event.IncidentAcknowledged](t, a.Bus); len(acks) != 1 || acks[0].IncidentID != incs[1].id {
		t.Errorf("acknowledgements %+v, want %s's", acks, incs[1].id)
	}

	for _, inc := range incs[:storm/2] {
		inc.resolveNow()
	}
	waitSlack(t, s, "half resolved in the root", func() bool {
		m, _ := s.Message("C0OPS", root.TS)
		return listing(m, "20 incidents · 10 open")
	})
	a.Restart(t)
	pub = a.As(t, access.Incident)
	for _, inc := range incs[storm/2:] {
		inc.b = pub
		inc.resolveNow()
	}
	waitSlack(t, s, "every incident resolved in the root", func() bool {
		m, _ := s.Message("C0OPS", root.TS)
		return listing(m, "20 incidents · 0 open")
	})

	var posts, edits int
	for _, c := range s.AcceptedCalls() {
		switch c.Method {
		case "chat.postMessage":
			posts++
		case "chat.update":
			edits++
		}
	}
	if posts != 2 || len(roots()) != 1 { // the root and the escalation's reply
		t.Errorf("%d posts, %d roots, want the shared root and one reply:%s", posts, len(roots()), describe(s.Calls()))
	}
	t.Logf("a storm of %d: %d posts, %d edits", storm, posts, edits)

	// The grouping is in the ledger: a rebuild groups identically.
	groups := map[string]string{}
	for _, r := range ledger[event.NotificationRouted](t, a.Bus) {
		if g, ok := r.Groups["C0OPS"]; ok {
			groups[r.IncidentID] = g
		}
	}
	st := rebuild(t, a.Bus)
	for _, l := range st.Lanes {
		if l.Dest != "C0OPS" {
			continue
		}
		if l.Group != incs[0].id || groups[l.Incident] != incs[0].id || !l.Rooted || l.RootTS != root.TS {
			t.Errorf("rebuilt lane %s: group %q (ledger %q) root %q, want %s under %s", l.Incident, l.Group,
				groups[l.Incident], l.RootTS, incs[0].id, root.TS)
		}
	}
	if len(groups) != storm {
		t.Errorf("%d grouping decisions in the ledger, want %d", len(groups), storm)
	}
}

// groupWait 0s (the default) groups nothing: every incident has its root.
func TestWithoutGroupWaitEveryIncidentHasItsRoot(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(groupConfig(s, "0s")))
	pub := a.As(t, access.Incident)
	for k := range 3 {
		newIncident(t, pub, fmt.Sprintf("inc-9b0%013d", k), "P2", map[string]string{"app": "shop"}).openNow()
	}
	waitSlack(t, s, "three roots", func() bool { return len(s.Messages("C0OPS")) == 3 })
	for _, r := range ledger[event.NotificationRouted](t, a.Bus) {
		if r.Groups != nil {
			t.Errorf("a grouping decision without groupWait: %+v", r)
		}
	}
}

// A shared root lists at most 50 incidents (Slack's 50 blocks): the 51st
// starts a group of its own.
func TestAGroupListsAtMostFiftyIncidents(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(strings.Replace(groupConfig(s, "1s"),
		"perSecond: 1, burst: 1", "perSecond: 50, burst: 5", 1)))
	pub := a.As(t, access.Incident)
	for k := range 60 {
		newIncident(t, pub, fmt.Sprintf("inc-9c0%013d", k), "P3", map[string]string{"app": fmt.Sprintf("app%02d", k)}).openNow()
	}
	waitSlack(t, s, "two roots listing 50 and 10", func() bool {
		var heads []string
		for _, m := range s.Messages("C0OPS") {
			if m.ThreadTS == "" {
				head, _, _ := strings.Cut(m.Text, ":")
				heads = append(heads, head)
			}
		}
		return strings.Join(heads, ", ") == "50 incidents, 10 incidents"
	})
}

// A notifier killed right after Slack accepted a grouped post (the shared
// root, a member's reply), before its ledger entry, finds the post in
// Slack when it restarts: nothing is posted twice, and the edits go to the
// shared root adopted.
func TestCrashesInAGroupPostNothingTwice(t *testing.T) {
	const incidents = 10
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0K1", "k1")
	cfg := webAPIConfig(s, "C0K1")
	cfg.GroupWait = cfgDuration(time.Minute) // they opened long ago: no wait, one group
	c := newCrashOnce()
	posted := func(n int) func() bool {
		return func() bool { return count(t, b, "notifications.slack_message_posted.>") == n }
	}
	var incs []*incident
	for k := range incidents {
		incs = append(incs, newIncident(t, b, fmt.Sprintf("inc-9d0%013d", k), "P3", map[string]string{"app": "k1"}).open())
	}
	crashes := runUntil(t, b, cfg, c, "the shared root", posted(1))
	incs[4].escalate("P2")
	incs[7].escalate("P2")
	crashes += runUntil(t, b, cfg, c, "the replies", posted(3))
	for _, inc := range incs {
		inc.resolve()
	}
	start(t, b, cfg, &heraldtest.Buffer{})
	waitSlack(t, s, "the shared root shows every incident resolved", func() bool {
		for _, m := range s.Messages("C0K1") {
			if m.ThreadTS == "" && strings.Contains(string(m.Blocks), "10 incidents · 0 open") {
				return true
			}
		}
		return false
	})
	steps, roots := map[string]int{}, 0
	for _, m := range s.Messages("C0K1") {
		steps[stepOf(t, m)]++
		if m.ThreadTS == "" {
			roots++
		}
	}
	for step, n := range steps {
		if n != 1 {
			t.Errorf("step %s is in Slack %d times", step, n)
		}
	}
	if roots != 1 || len(steps) != 3 || crashes != 3 {
		t.Errorf("%d roots, %d steps in Slack after %d crashes; want 1 root and 2 replies, each crashed once:%s",
			roots, len(steps), crashes, describe(s.Calls()))
	}
	adopted := 0
	for _, p := range ledger[event.SlackMessagePosted](t, b) {
		if p.Adopted {
			adopted++
		}
	}
	if adopted != crashes {
		t.Errorf("%d posts adopted after %d crashes", adopted, crashes)
	}
	for _, l := range rebuild(t, b).Lanes {
		if l.Group != incs[0].id {
			t.Errorf("rebuilt lane %s in group %q, want %s", l.Incident, l.Group, incs[0].id)
		}
	}
}
