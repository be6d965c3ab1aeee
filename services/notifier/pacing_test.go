package notifier_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

// TestResolvesArePacedByEachMethodsOwnLimit resolves 200 incidents over 10
// channels: each resolve is a chat.update (limited per workspace) and a
// thread reply (chat.postMessage, limited per channel). The fake refuses
// any call over either limit, so no 429 means the notifier kept to both;
// and a channel getting more calls in a second than its post limit allows
// shows that edits are not paced as posts.
// Long on purpose: one scenario, told step by step in the order it happens.
func TestResolvesArePacedByEachMethodsOwnLimit(t *testing.T) {
	const (
		channels   = 10
		perChannel = 20
		postRate   = 10.0 // the fake's per channel, per second
		postBurst  = 3
		editRate   = 12000.0 // the fake's per workspace, per minute
		editBurst  = 10
	)
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(postRate, postBurst),
		heraldtest.WithSlackMethodRate("chat.update", editRate, editBurst))
	cfg := webAPIConfig(s)
	cfg.Routes = nil
	// The notifier keeps a little under the fake's limits: requests spaced
	// exactly at the limit may arrive a little closer together, and a smaller
	// burst leaves room for that.
	cfg.RateLimit.PerSecond, cfg.RateLimit.Burst = postRate*0.9, postBurst-1
	cfg.RateLimit.Update = notifier.MethodRate{PerMinute: editRate * 0.9, Burst: editBurst - 4}
	for c := range channels {
		id, app := fmt.Sprintf("C0P%02d", c), fmt.Sprintf("p%02d", c)
		s.AddChannel(id, app)
		cfg.Routes = append(cfg.Routes, notifier.Route{Name: app, Match: event.SubscriptionMatch{App: app}, Channels: []string{id}})
	}
	var all []string
	for _, r := range cfg.Routes {
		all = append(all, r.Channels...)
	}
	cfg.Routes = append(cfg.Routes, sentinelRoute(all...))
	start(t, b, cfg, nil)

	var incs []*incident
	for i := range channels * perChannel {
		app := fmt.Sprintf("p%02d", i%channels)
		incs = append(incs, newIncident(t, b, fmt.Sprintf("inc-%016x", 0xa000+i), "P3", map[string]string{"app": app}).open())
	}
	waitCalls(t, s, channels*perChannel, 30*time.Second)
	opened := len(s.Calls())

	begin := time.Now()
	for _, i := range incs {
		i.resolve()
	}
	calls := waitCalls(t, s, 3*channels*perChannel, 30*time.Second)
	elapsed := time.Since(begin)

	resolvePhase := flush(t, b, b, s, channels)[opened:]
	var edits, replies int
	editOf, replyOf := map[string]time.Time{}, map[string]time.Time{}
	for _, c := range resolvePhase {
		switch {
		case !c.Accepted():
			t.Errorf("refused: %s", describe([]heraldtest.SlackCall{c}))
		case c.Method == "chat.update":
			edits++
			editOf[c.TS] = c.Time
		case c.Method == "chat.postMessage" && strings.HasPrefix(c.Text, "Resolved"):
			replies++
			replyOf[c.ThreadTS] = c.Time
		default:
			t.Errorf("unexpected: %s", describe([]heraldtest.SlackCall{c}))
		}
	}
	if edits != channels*perChannel || replies != channels*perChannel || len(editOf) != edits || len(replyOf) != replies {
		t.Errorf("%d edits of %d roots, %d replies in %d threads; want %d of each", edits, len(editOf), replies, len(replyOf),
			channels*perChannel)
	}
	for ts := range replyOf {
		if _, ok := editOf[ts]; !ok {
			t.Errorf("root %s: replied to, never edited", ts)
		}
	}
	if v := s.RetryAfterViolations(); len(v) > 0 {
		t.Errorf("Retry-After not respected: %v", v)
	}
	// The busiest second of a channel: a shared per-channel bucket would
	// allow at most rate + burst calls in it.
	busiest := 0
	for c := range channels {
		id := fmt.Sprintf("C0P%02d", c)
		var times []time.Time
		for _, x := range resolvePhase {
			if x.Channel == id {
				times = append(times, x.Time)
			}
		}
		for i := range times {
			n := 0
			for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
				n++
			}
			busiest = max(busiest, n)
		}
	}
	if busiest <= int(postRate)+postBurst {
		t.Errorf("at most %d calls in a second in a channel: edits are paced like posts (%d/s, burst %d)", busiest,
			int(postRate), postBurst)
	}
	span := calls[len(calls)-1].Time.Sub(resolvePhase[0].Time)
	t.Logf("%d resolves over %d channels: %d requests, %s from the first to the last as the fake measured (%s after publishing); "+
		"the busiest channel second had %d calls; the limits allow it in ≥ %.1fs (%d replies a channel at %.0f/s, burst %d)",
		channels*perChannel, channels, len(resolvePhase), span.Round(time.Millisecond), elapsed.Round(time.Millisecond), busiest,
		float64(perChannel-postBurst)/postRate, perChannel, postRate, postBurst)

}
