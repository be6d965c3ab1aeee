package notifier_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

// Design §7: one active notifier and a standby. The active one dies (its
// connection drops: no release, no last ledger write) in the middle of a
// storm; the standby takes over within 10 s, and every transition is
// posted exactly once, in order, every edit going to the one root.
// Long on purpose: one scenario, told step by step in the order it happens.
func TestAStandbyTakesOverMidStormWithoutPostingTwice(t *testing.T) {
	const perChannel = 4
	channels := []string{"C0S1", "C0S2", "C0S3"}
	srv := heraldtest.Server(t)
	b1, b2, pub := heraldtest.Connect(t, srv), heraldtest.Connect(t, srv), heraldtest.Connect(t, srv)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	cfg := webAPIConfig(s)
	cfg.Slack.Timeout = cfgDuration(2 * time.Second)
	cfg.Routes = nil
	for i, ch := range channels {
		app := fmt.Sprintf("s%d", i+1)
		s.AddChannel(ch, app)
		cfg.Routes = append(cfg.Routes, notifier.Route{Name: app, Match: event.SubscriptionMatch{App: app}, Channels: []string{ch}})
	}
	cfg.Routes = append(cfg.Routes, sentinelRoute(channels...))
	n1, err := notifier.New(cfg, notifier.Deps{Bus: b1, Log: heraldtest.Logger(t), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = n1.Stop(ctx) // its connection is gone: it cannot drain
	})
	n2 := start(t, b2, cfg, nil)
	if !n1.Active() || n2.Active() {
		t.Fatalf("active: first %v, second %v", n1.Active(), n2.Active())
	}

	var incs []*incident
	for i := range perChannel * len(channels) {
		app := fmt.Sprintf("s%d", i%len(channels)+1)
		incs = append(incs, newIncident(t, pub, fmt.Sprintf("inc-5a0d%012d", i), "P3", map[string]string{"app": app}))
	}
	// The first half of the storm reaches the active notifier…
	for _, i := range incs {
		i.open().escalate("P2")
	}
	waitCalls(t, s, len(incs), 10*time.Second)
	killed := time.Now()
	b1.NC.Close()
	// …the rest arrives while nobody is active.
	for _, i := range incs {
		i.escalate("P1").resolve()
	}
	heraldtest.Eventually(t, 10*time.Second, "the standby active", n2.Active)
	took := time.Since(killed)

	heraldtest.Eventually(t, 30*time.Second, "every post, and every root showing the resolve", func() bool {
		posts, resolved := 0, 0
		for _, ch := range channels {
			for _, m := range s.Messages(ch) {
				posts++
				if m.ThreadTS == "" && strings.HasPrefix(m.Text, "[resolved]") {
					resolved++
				}
			}
		}
		return posts >= 4*len(incs) && resolved == len(incs)
	})
	calls := accepted(flush(t, pub, pub, s, len(channels)))

	posts := 0
	for _, c := range calls {
		if c.Method == "chat.postMessage" {
			posts++
		}
	}
	messages := 0
	for _, ch := range channels {
		var msgs []heraldtest.SlackMessage
		for _, m := range s.Messages(ch) {
			if !isSentinel(m.Text) {
				msgs = append(msgs, m)
			}
		}
		messages += len(msgs)
		seen := map[string]bool{}
		var story []string
		for _, m := range msgs {
			step := stepOf(t, m)
			if seen[step] {
				t.Errorf("%s: step %s is in Slack twice", ch, step)
			}
			seen[step] = true
			if m.ThreadTS == "" {
				if !strings.HasPrefix(m.Text, "[resolved]") {
					t.Errorf("%s: root %s ends as %q", ch, m.TS, m.Text)
				}
				continue
			}
			story = append(story, m.ThreadTS+" "+m.Text[:strings.Index(m.Text, " at ")])
		}
		// Each thread: the escalations and the resolve, in order.
		threads := map[string][]string{}
		for _, r := range story {
			ts, text, _ := strings.Cut(r, " ")
			threads[ts] = append(threads[ts], text[:strings.Index(text, " ")])
		}
		if len(threads) != perChannel {
			t.Errorf("%s: %d threads", ch, len(threads))
		}
		for ts, replies := range threads {
			if strings.Join(replies, ",") != "Escalated,Escalated,Resolved" {
				t.Errorf("%s: thread %s: %v", ch, ts, replies)
			}
		}
	}
	if posts != messages || messages != 4*len(incs) {
		t.Errorf("%d posts accepted, %d messages in Slack, want %d of each", posts, messages, 4*len(incs))
	}
	if t.Failed() {
		for _, e := range heraldtest.Events(t, pub, "NOTIFICATIONS") {
			t.Logf("ledger %s", e.Subject)
		}
		for _, ch := range channels {
			for _, m := range s.Messages(ch) {
				t.Logf("slack %s ts=%s thread=%s %s %.40s", ch, m.TS, m.ThreadTS, stepOf(t, m), m.Text)
			}
		}
	}
	if took > 10*time.Second {
		t.Errorf("the standby took over %s after the kill", took)
	}
	t.Logf("the standby took over %s after the active notifier's connection dropped; %d posts, none twice",
		took.Round(10*time.Millisecond), posts)
}
