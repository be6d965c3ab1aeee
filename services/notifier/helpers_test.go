package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
	"github.com/heraldhq/herald/streams"
)

var onset = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func evidence(failed, total int) event.Evidence {
	return event.Evidence{Failed: failed, Total: total, Ratio: float64(failed) / float64(max(total, 1)), Window: "5m0s",
		Samples: []string{"req-1", "req-2"}, FirstSeq: 100, LastSeq: 199}
}

// incident publishes an incident's transitions as the incident projection
// does: each on incidents.<type>.<id>.<ordinal>, written once, with a
// deterministic id.
type incident struct {
	t     testing.TB
	b     *bus.Bus
	id    string
	group map[string]string
	sev   string
	peak  string
	ord   int
}

func newIncident(t testing.TB, b *bus.Bus, id, sev string, group map[string]string) *incident {
	return &incident{t: t, b: b, id: id, group: group, sev: sev, peak: sev}
}

func (i *incident) publish(d event.Data, at time.Time) {
	i.t.Helper()
	subj := fmt.Sprintf("incidents.%s.%s.%d", d.EventType(), i.id, i.ord)
	e := event.New("incident", d, event.WithID(fmt.Sprintf("%s-%d", i.id, i.ord)), event.WithSubject(subj), event.WithTime(at))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := i.b.PublishOnce(ctx, e); err != nil {
		i.t.Fatal(err)
	}
	i.ord++
}

func (i *incident) open() *incident {
	i.publish(event.IncidentOpened{IncidentID: i.id, Rule: "otp-failure-rate", Kind: "ratio", Severity: i.sev,
		Group: i.group, OpenedAt: onset, Summary: i.group["app"] + ": 23% of OTP sends failing",
		Runbook: "https://herald.dev/runbooks/otp-dlt-outage", Evidence: evidence(23, 100)}, onset)
	return i
}

func (i *incident) escalate(to string) *incident {
	at := onset.Add(time.Duration(i.ord) * 6 * time.Minute)
	i.publish(event.IncidentEscalated{IncidentID: i.id, Rule: "otp-failure-rate", Group: i.group, From: i.sev, To: to,
		At: at, Evidence: evidence(61, 100)}, at)
	i.sev = to
	if to < i.peak { // "P1" < "P2": more severe
		i.peak = to
	}
	return i
}

func (i *incident) resolve() *incident {
	at := onset.Add(20 * time.Minute)
	i.publish(event.IncidentResolved{IncidentID: i.id, Rule: "otp-failure-rate", Group: i.group, OpenedAt: onset,
		ResolvedAt: at, PeakSeverity: i.peak, Evidence: evidence(0, 100)}, at)
	return i
}

// start runs a notifier on b with the YAML-free configuration given.
func start(t testing.TB, b *bus.Bus, cfg notifier.Config, out io.Writer) *notifier.Notifier {
	t.Helper()
	n, err := notifier.New(cfg, notifier.Deps{Bus: b, Log: heraldtest.Logger(t), Registry: prometheus.NewRegistry(), Stdout: out})
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

func stop(t testing.TB, n *notifier.Notifier) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// webAPIConfig routes everything to channel to the fake's Web API, fast.
func webAPIConfig(s *heraldtest.Slack, channels ...string) notifier.Config {
	cfg := notifier.DefaultConfig()
	cfg.Slack.APIURL, cfg.Slack.BotToken = s.APIURL, s.Token
	cfg.Routes = []notifier.Route{{Name: "all", Channels: channels}}
	cfg.RateLimit.PerSecond, cfg.RateLimit.Burst = 50, 5
	cfg.Retry.Initial = cfgDuration(50 * time.Millisecond)
	cfg.Retry.Max = cfgDuration(200 * time.Millisecond)
	return cfg
}

// waitCalls waits until the fake has accepted n calls and returns them.
func waitCalls(t testing.TB, s *heraldtest.Slack, n int, within time.Duration) []heraldtest.SlackCall {
	t.Helper()
	deadline := time.After(within)
	for {
		changed := s.Changed()
		if got := s.AcceptedCalls(); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waited %s for %d accepted calls; got %s", within, n, describe(s.Calls()))
		}
	}
}

// sentinelApp is the app of the incidents flush publishes: a test that
// routes by app adds sentinelRoute for the destinations flush is to cover.
const sentinelApp = "sentinel"

func sentinelRoute(dests ...string) notifier.Route {
	return notifier.Route{Name: sentinelApp, Match: event.SubscriptionMatch{App: sentinelApp}, Channels: dests}
}

// flush proves that a notifier has nothing more to send for what came
// before, without waiting for a time and hoping: it opens a sentinel
// incident routed to dests destinations and waits until the ledger
// records the outcome of its root post on each (posted or failed). The
// notifier consumes INCIDENTS in order and, at start, queues every lane
// with an unfinished step before consuming; each destination's worker
// serves its lanes in turn. So every step that was due on those
// destinations before the sentinel arrived has been sent by then, and a
// duplicate or a step that should not exist shows among the calls flush
// returns: every call the fake received except the sentinel's.
//
// A step set aside for a backoff is not ordered before the sentinel; the
// tests of retries wait for the ledger's record of the retried step first.
// pub publishes the sentinel, read reads the ledger (they differ when the
// publisher's role cannot read NOTIFICATIONS).
func flush(t testing.TB, pub, read *bus.Bus, s *heraldtest.Slack, dests int) []heraldtest.SlackCall {
	t.Helper()
	id := fmt.Sprintf("inc-%016x", rand.Uint64())
	newIncident(t, pub, id, "P1", map[string]string{"app": sentinelApp}).open()
	heraldtest.Eventually(t, 10*time.Second, "the sentinel incident's posts in the ledger", func() bool {
		return count(t, read, "notifications.slack_message_posted."+id+".>")+
			count(t, read, "notifications.notification_failed."+id+".>") >= dests
	})
	return withoutSentinels(s.Calls())
}

// withoutSentinels leaves out the calls about flush's incidents.
func withoutSentinels(calls []heraldtest.SlackCall) []heraldtest.SlackCall {
	var out []heraldtest.SlackCall
	for _, c := range calls {
		if !isSentinel(c.Text + string(c.Blocks) + string(c.Body)) {
			out = append(out, c)
		}
	}
	return out
}

func isSentinel(text string) bool {
	return strings.Contains(text, "app="+sentinelApp) || strings.Contains(text, `"`+sentinelApp+`"`)
}

// accepted is calls' accepted calls with an effect, as Slack.AcceptedCalls.
func accepted(calls []heraldtest.SlackCall) []heraldtest.SlackCall {
	var out []heraldtest.SlackCall
	for _, c := range calls {
		if c.Accepted() && !strings.HasPrefix(c.Method, "conversations.") {
			out = append(out, c)
		}
	}
	return out
}

func describe(calls []heraldtest.SlackCall) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\n  %s %s ch=%s ts=%s thread=%s bc=%v status=%d err=%s text=%.80q",
			c.Time.Format("15:04:05.000"), c.Method, c.Channel, c.TS, c.ThreadTS, c.Broadcast, c.Status, c.Error, c.Text)
	}
	return b.String()
}

// ledger reads the NOTIFICATIONS entries of one type.
func ledger[T event.Data](t testing.TB, b *bus.Bus) []T {
	t.Helper()
	var zero T
	var out []T
	for _, e := range heraldtest.Events(t, b, streams.Notifications, "notifications."+string(zero.EventType())+".>") {
		out = append(out, e.Data.(T))
	}
	return out
}

// count is the number of NOTIFICATIONS messages on subjects matching filter.
func count(t testing.TB, b *bus.Bus, filter string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.JS.Stream(ctx, streams.Notifications)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

func blocksText(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var blocks []struct {
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
		Fields []struct {
			Text string `json:"text"`
		} `json:"fields"`
		Elements []struct {
			Text json.RawMessage `json:"text"` // a string, or a button's text object
		} `json:"elements"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	var b strings.Builder
	for _, bl := range blocks {
		if bl.Text != nil {
			b.WriteString(bl.Text.Text + "\n")
		}
		for _, f := range bl.Fields {
			b.WriteString(f.Text + "\n")
		}
		for _, e := range bl.Elements {
			var text string
			if json.Unmarshal(e.Text, &text) != nil {
				var obj struct{ Text string }
				_ = json.Unmarshal(e.Text, &obj)
				text = "[" + obj.Text + "]"
			}
			b.WriteString(text + "\n")
		}
	}
	return b.String()
}
