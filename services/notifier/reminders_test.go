package notifier_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

const remindEvery = 200 * time.Millisecond

// Long on purpose: one incident's reminders through a crash between
// Slack's answer and the ledger, then a clean restart, then a rebuild.
func TestRemindersArePostedOnceAcrossCrashesAndRestarts(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0REMIND", "remind")
	cfg := webAPIConfig(s, "C0REMIND")
	cfg.RepeatInterval = config.Duration(remindEvery)
	inc := newIncident(t, b, "inc-4e0000000000000a", "P1", map[string]string{"app": "shop"})

	// The second reminder is killed right after Slack's answer.
	crashed := make(chan struct{})
	n := startCrashing(t, b, cfg, func(step string) bool {
		if strings.Contains(step, ".reminder-2.") {
			close(crashed)
			return true
		}
		return false
	})
	inc.open()
	root := rootOf(t, s, "C0REMIND", inc.id)
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatalf("no second reminder; calls: %s", describe(s.Calls()))
	}
	stop(t, n)
	// Its successor finds it in Slack, and goes on from there; then a
	// clean restart goes on again.
	n = start(t, b, cfg, nil)
	waitSlack(t, s, "reminder 4", func() bool { return len(reminders(s, "C0REMIND", root)) >= 4 })
	stop(t, n)
	n = start(t, b, cfg, nil)
	waitSlack(t, s, "reminder 6", func() bool { return len(reminders(s, "C0REMIND", root)) >= 6 })
	stop(t, n)

	got := reminders(s, "C0REMIND", root)
	for i, m := range got {
		want := fmt.Sprintf("%s.reminder-%d.C0REMIND.reply", inc.id, i+1)
		if step := stepOf(t, m); step != want {
			t.Errorf("reminder %d in Slack is step %s, want %s (each once, in order)", i+1, step, want)
		}
		if m.Broadcast {
			t.Errorf("reminder %d was broadcast", i+1)
		}
		if !strings.Contains(m.Text, "still open") || !strings.Contains(m.Text, "not acknowledged") {
			t.Errorf("reminder text %q", m.Text)
		}
	}
	var posts []heraldtest.SlackCall
	for _, c := range callsOf(s, "chat.postMessage") {
		if c.ThreadTS == root.TS && strings.HasPrefix(c.Text, "Reminder ") {
			posts = append(posts, c)
		}
	}
	if len(posts) != len(got) {
		t.Errorf("%d reminder posts accepted for %d reminders", len(posts), len(got))
	}
	for i := 1; i < len(posts); i++ {
		if gap := posts[i].Time.Sub(posts[i-1].Time); gap < remindEvery {
			t.Errorf("reminder %d came %s after the one before, sooner than the interval", i+1, gap)
		}
	}
	adopted := 0
	for _, p := range ledger[event.SlackMessagePosted](t, b) {
		if strings.HasPrefix(p.Transition, "reminder-") {
			if p.ThreadTS != root.TS || p.Action != "reply" {
				t.Errorf("reminder entry %+v", p)
			}
			if p.Adopted {
				adopted++
			}
		}
	}
	if adopted != 1 {
		t.Errorf("%d reminders adopted from Slack after the crash, want 1 (the second)", adopted)
	}
	st := rebuild(t, b)
	for _, l := range st.Lanes {
		if l.Reminders != len(got) {
			t.Errorf("rebuilt lane has %d reminders, Slack %d", l.Reminders, len(got))
		}
	}
}

// Reminders go where a route wants them and a thread exists, and stop
// when the incident resolves.
func TestRemindersFollowRoutesAndStopAtTheResolve(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	for _, c := range []string{"C0LOUD", "C0QUIET", "C0HOOK"} {
		s.AddChannel(c, strings.ToLower(c[2:]))
	}
	cfg := webAPIConfig(s)
	cfg.RepeatInterval = config.Duration(remindEvery)
	cfg.IncomingWebhooks = map[string]string{"hook": s.IncomingWebhookURL("hook")}
	off := config.Duration(0)
	cfg.Routes = []notifier.Route{
		{Name: "loud", Channels: []string{"C0LOUD", "incoming:hook"}},
		{Name: "quiet", Channels: []string{"C0QUIET"}, RepeatInterval: &off},
	}
	start(t, b, cfg, nil)
	done := newIncident(t, b, "inc-4e1000000000000a", "P2", map[string]string{"app": "shop"}).open()
	clock := newIncident(t, b, "inc-4e1000000000000b", "P2", map[string]string{"app": "bank"}).open()
	loud := rootOf(t, s, "C0LOUD", done.id)
	clockRoot := rootOf(t, s, "C0LOUD", clock.id)
	waitSlack(t, s, "a reminder", func() bool { return len(reminders(s, "C0LOUD", loud)) >= 1 })
	done.resolve()
	waitSlack(t, s, "the resolve's reply", func() bool {
		for _, m := range s.Messages("C0LOUD") {
			if m.ThreadTS == loud.TS && strings.HasPrefix(m.Text, "Resolved") {
				return true
			}
		}
		return false
	})
	before := len(reminders(s, "C0LOUD", loud))
	ticks := len(reminders(s, "C0LOUD", clockRoot))
	waitSlack(t, s, "three more reminders of the open incident", func() bool {
		return len(reminders(s, "C0LOUD", clockRoot)) >= ticks+3
	})
	if n := len(reminders(s, "C0LOUD", loud)); n != before {
		t.Errorf("%d reminders after the resolve", n-before)
	}
	for _, m := range s.Messages("C0QUIET") {
		if strings.HasPrefix(m.Text, "Reminder ") {
			t.Errorf("a reminder in the channel whose route turns them off: %q", m.Text)
		}
	}
	for _, c := range s.AcceptedCalls() {
		if c.Method == "incoming_webhook" && strings.HasPrefix(c.Text, "Reminder ") {
			t.Errorf("a reminder as a new message of an incoming webhook: %q", c.Text)
		}
	}
}

func TestRepeatIntervalValidation(t *testing.T) {
	neg := config.Duration(-time.Second)
	for name, mod := range map[string]func(*notifier.Config){
		"global": func(c *notifier.Config) { c.RepeatInterval = neg },
		"route": func(c *notifier.Config) {
			c.Routes = []notifier.Route{{Name: "r", Channels: []string{"console"}, RepeatInterval: &neg}}
		},
		"link": func(c *notifier.Config) { c.PublicURL = "herald.example.com" },
	} {
		cfg := notifier.DefaultConfig()
		mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if d := notifier.DefaultConfig().RepeatInterval.D(); d != 4*time.Hour {
		t.Errorf("default repeatInterval %s, want Alertmanager's 4h", d)
	}
}
