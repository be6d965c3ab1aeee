package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

// startCrashing runs a notifier whose crash hook is hook.
func startCrashing(t testing.TB, b *bus.Bus, cfg notifier.Config, hook func(string) bool) *notifier.Notifier {
	t.Helper()
	n, err := notifier.New(cfg, notifier.Deps{Bus: b, Log: heraldtest.Logger(t), Registry: prometheus.NewRegistry(),
		CrashAfterSend: hook})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, n) })
	return n
}

// crashOnce is a crash hook that kills the notifier once at each post
// (root or reply) right after Slack's answer, and tells crashed.
type crashOnce struct {
	mu      sync.Mutex
	seen    map[string]bool
	crashed chan string
}

func newCrashOnce() *crashOnce {
	return &crashOnce{seen: map[string]bool{}, crashed: make(chan string, 1)}
}

func (c *crashOnce) hook(step string) bool {
	if strings.HasSuffix(step, ".update") {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[step] {
		return false
	}
	c.seen[step] = true
	select { // two workers may crash together: the restart is one
	case c.crashed <- step:
	default:
	}
	return true
}

func (c *crashOnce) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// runUntil restarts a crashing notifier after each crash until done holds,
// and returns the number of crashes.
func runUntil(t *testing.T, b *bus.Bus, cfg notifier.Config, c *crashOnce, what string, done func() bool) int {
	t.Helper()
	before := c.count()
	deadline := time.After(60 * time.Second)
	n := startCrashing(t, b, cfg, c.hook)
	for !done() {
		select {
		case <-c.crashed:
			stop(t, n)
			n = startCrashing(t, b, cfg, c.hook)
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("after %d crashes, still waiting for %s", c.count()-before, what)
		}
	}
	stop(t, n)
	return c.count() - before
}

// stepOf reads the herald_step metadata of a fake Slack message.
func stepOf(t testing.TB, m heraldtest.SlackMessage) string {
	var meta struct {
		EventType    string         `json:"event_type"`
		EventPayload map[string]any `json:"event_payload"`
	}
	if len(m.Metadata) == 0 {
		return ""
	}
	if err := json.Unmarshal(m.Metadata, &meta); err != nil || meta.EventType != "herald_step" {
		t.Errorf("metadata %s: %v", m.Metadata, err)
	}
	s, _ := meta.EventPayload["step"].(string)
	return s
}

// Long on purpose: one scenario, told step by step in the order it happens.
func TestCrashesBetweenSlacksAnswerAndTheLedgerPostNothingTwice(t *testing.T) {
	const incidents = 8
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0K1", "k1")
	s.AddChannel("C0K2", "k2")
	cfg := webAPIConfig(s)
	cfg.Routes = []notifier.Route{
		{Name: "k1", Match: event.SubscriptionMatch{App: "k1"}, Channels: []string{"C0K1"}},
		{Name: "k2", Match: event.SubscriptionMatch{App: "k2"}, Channels: []string{"C0K2"}},
	}
	c := newCrashOnce()
	posted := func(n int) func() bool {
		return func() bool { return count(t, b, "notifications.slack_message_posted.>") == n }
	}
	var incs []*incident
	for i := range incidents {
		app := []string{"k1", "k2"}[i%2]
		incs = append(incs, newIncident(t, b, fmt.Sprintf("inc-c4a5%012d", i), "P3", map[string]string{"app": app}).open())
	}
	// Every root post is killed once right after Slack's answer.
	crashes := runUntil(t, b, cfg, c, "the roots", posted(incidents))
	// Then the incidents move on: every reply post is killed once too, and
	// the edits must go to the roots adopted.
	for _, i := range incs {
		i.escalate("P2").resolve()
	}
	crashes += runUntil(t, b, cfg, c, "the replies", posted(3*incidents))

	if crashes != 3*incidents {
		t.Errorf("%d crashes, want one at each of the %d posts", crashes, 3*incidents)
	}
	dups := 0
	for _, ch := range []string{"C0K1", "C0K2"} {
		steps := map[string]int{}
		roots := 0
		for _, m := range s.Messages(ch) {
			steps[stepOf(t, m)]++
			if m.ThreadTS == "" {
				roots++
				if !strings.HasPrefix(m.Text, "[resolved]") {
					t.Errorf("%s: root %s still shows %q: an edit went elsewhere", ch, m.TS, m.Text)
				}
			}
		}
		for step, n := range steps {
			if n != 1 {
				dups += n - 1
				t.Errorf("%s: step %s is in Slack %d times", ch, step, n)
			}
		}
		if roots != incidents/2 || len(steps) != 3*incidents/2 {
			t.Errorf("%s: %d roots and %d steps in Slack", ch, roots, len(steps))
		}
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
	if n := count(t, b, "notifications.slack_message_deleted.>"); n != 0 {
		t.Errorf("%d duplicates had to be deleted", n)
	}
	t.Logf("%d crashes right after Slack's answer, before the ledger write: %d duplicates, %d adopted from Slack", crashes, dups, adopted)
}

func TestAnAnswerLostOnTheWayIsFoundInSlackNotPostedAgain(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	start(t, b, webAPIConfig(s, "C0OPS"), nil)
	s.LoseAnswers("C0OPS", 2) // the root, then the resolve reply
	inc := newIncident(t, b, "inc-10570000000000a1", "P2", map[string]string{"app": "shop"}).open()
	heraldtest.Eventually(t, 5*time.Second, "the root adopted", func() bool {
		return count(t, b, "notifications.slack_message_posted.>") == 1
	})
	inc.resolve()
	heraldtest.Eventually(t, 5*time.Second, "the reply adopted", func() bool {
		return count(t, b, "notifications.slack_message_posted.>") == 2 && count(t, b, "notifications.slack_message_updated.>") == 1
	})
	msgs := s.Messages("C0OPS")
	if len(msgs) != 2 || msgs[0].ThreadTS != "" || msgs[1].ThreadTS != msgs[0].TS || !strings.HasPrefix(msgs[0].Text, "[resolved]") {
		t.Fatalf("messages in Slack: %+v", msgs)
	}
	for _, p := range ledger[event.SlackMessagePosted](t, b) {
		if !p.Adopted || (p.Action == "root" && p.TS != msgs[0].TS) || (p.Action == "reply" && p.TS != msgs[1].TS) {
			t.Errorf("ledger %+v", p)
		}
	}
	var lookups []string
	for _, c := range s.Calls() {
		if strings.HasPrefix(c.Method, "conversations.") {
			lookups = append(lookups, c.Method)
		}
	}
	if strings.Join(lookups, ",") != "conversations.history,conversations.replies" {
		t.Errorf("look-ups %v:%s", lookups, describe(s.Calls()))
	}
}

func TestADuplicatePostedWhereItCouldNotBeLookedUpIsDeleted(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	// Routed by name: until Slack answers once, its id is unknown, and the
	// history cannot be read.
	cfg := webAPIConfig(s, "#ops")
	c := newCrashOnce()
	inc := newIncident(t, b, "inc-d0b1e00000000001", "P2", map[string]string{"app": "shop"}).open()
	crashes := runUntil(t, b, cfg, c, "the root", func() bool {
		return count(t, b, "notifications.slack_message_posted.>") == 1 && count(t, b, "notifications.slack_message_deleted.>") == 1
	})
	inc.resolve()
	n := start(t, b, cfg, nil)
	heraldtest.Eventually(t, 5*time.Second, "the resolve", func() bool { return finished(s.AcceptedCalls(), "C0OPS") })
	stop(t, n)

	msgs := s.Messages("C0OPS")
	if crashes != 1 || len(msgs) != 2 || msgs[1].ThreadTS != msgs[0].TS || !strings.HasPrefix(msgs[0].Text, "[resolved]") {
		t.Fatalf("%d crashes; messages in Slack: %+v", crashes, msgs)
	}
	d := ledger[event.SlackMessageDeleted](t, b)
	root := ledger[event.SlackMessagePosted](t, b)[0]
	if len(d) != 1 || d[0].Kept != msgs[0].TS || d[0].TS == msgs[0].TS || root.TS != msgs[0].TS || d[0].Reason != "duplicate" {
		t.Errorf("deleted %+v, root %+v, messages %+v", d, root, msgs)
	}
}
