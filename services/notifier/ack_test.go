package notifier_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/services/notifier"
)

// ackConfig routes everything to C0ONCALL, with the buttons' link, the
// signing secret, and reminders every 200ms.
func ackConfig(s *heraldtest.Slack, repeat string) string {
	return fmt.Sprintf(`
notifier:
  slack: {apiURL: %q, botToken: %q, signingSecret: %q}
  publicURL: https://herald.example.com/
  repeatInterval: %s
  rateLimit: {perSecond: 50, burst: 5, update: {perMinute: 6000, burst: 50}}
  routes:
    - {name: all, channels: [C0ONCALL]}
`, s.APIURL, s.Token, secret, repeat)
}

// rootOf waits for an incident's root message in a channel of the fake.
func rootOf(t testing.TB, s *heraldtest.Slack, channel, incident string) heraldtest.SlackMessage {
	t.Helper()
	var root heraldtest.SlackMessage
	waitSlack(t, s, "the root of "+incident, func() bool {
		for _, m := range s.Messages(channel) {
			if m.ThreadTS == "" && strings.Contains(string(m.Metadata), incident) {
				root = m
				return true
			}
		}
		return false
	})
	return root
}

// waitSlack waits, at each call the fake records, until cond holds.
func waitSlack(t testing.TB, s *heraldtest.Slack, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		changed := s.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waited 10s for %s; calls: %s", what, describe(s.Calls()))
		}
	}
}

// reminders are the reminder replies in the thread of root.
func reminders(s *heraldtest.Slack, channel string, root heraldtest.SlackMessage) []heraldtest.SlackMessage {
	var out []heraldtest.SlackMessage
	for _, m := range s.Messages(channel) {
		if m.ThreadTS == root.TS && strings.HasPrefix(m.Text, "Reminder ") {
			out = append(out, m)
		}
	}
	return out
}

func actionIDs(m heraldtest.SlackMessage) string {
	var ids []string
	for _, b := range m.Buttons() {
		ids = append(ids, b.ActionID)
	}
	return strings.Join(ids, " ")
}

// Long on purpose: one scenario through herald serve, told in the order it
// happens — buttons, forged clicks refused, the ack, a second ack, and
// what an acknowledged incident no longer gets.
func TestAckFromSlackStopsRemindersAndBroadcasts(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0ONCALL", "oncall")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(ackConfig(s, "200ms")))
	pub := a.As(t, access.Incident)
	acked := newIncident(t, pub, "inc-ac0000000000000a", "P2", map[string]string{"app": "shop"}).open()
	newIncident(t, pub, "inc-ac0000000000000b", "P2", map[string]string{"app": "bank"}).open()
	root := rootOf(t, s, "C0ONCALL", acked.id)
	other := rootOf(t, s, "C0ONCALL", "inc-ac0000000000000b")

	if got := actionIDs(root); got != "herald_ack herald_silence_1h herald_open" {
		t.Errorf("root buttons %q, want Acknowledge, Silence 1 h and the link", got)
	}
	for _, b := range root.Buttons() {
		switch b.ActionID {
		case "herald_ack":
			if b.Value != acked.id || b.Style != "primary" {
				t.Errorf("ack button %+v", b)
			}
		case "herald_open":
			if b.URL != "https://herald.example.com/v1/incidents/"+acked.id {
				t.Errorf("link %q", b.URL)
			}
		}
	}
	waitSlack(t, s, "a reminder before the ack", func() bool { return len(reminders(s, "C0ONCALL", root)) >= 1 })

	interactions := a.URL + "/v1/slack/interactions"
	ana := s.Interaction(t, "C0ONCALL", root.TS, "U0ANA", "herald_ack")
	bob := s.Interaction(t, "C0ONCALL", root.TS, "U0BOB", "herald_ack")
	for _, tt := range []struct {
		name string
		key  string
		at   time.Time
		code string
	}{
		{"forged", "not-the-secret", time.Now(), "invalid_signature"},
		{"unsigned", "", time.Now(), "invalid_signature"},
		{"stale", secret, time.Now().Add(-6 * time.Minute), "stale_request"},
		{"from the future", secret, time.Now().Add(6 * time.Minute), "stale_request"},
	} {
		r := heraldtest.SendInteraction(t, interactions, tt.key, ana, tt.at)
		if r.Status != http.StatusUnauthorized || r.JSON(t)["error"] != tt.code {
			t.Errorf("%s: %d %s", tt.name, r.Status, r.Body)
		}
	}
	if n := len(ledger[event.IncidentAcknowledged](t, a.Bus)); n != 0 {
		t.Fatalf("a refused interaction recorded %d acks", n)
	}

	if r := s.Click(t, interactions, secret, "C0ONCALL", root.TS, "U0ANA", "herald_ack"); r.Status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.Status, r.Body)
	}
	var shown heraldtest.SlackMessage
	waitSlack(t, s, "the root showing the ack", func() bool {
		shown, _ = s.Message("C0ONCALL", root.TS)
		return strings.Contains(blocksText(t, shown.Blocks), "Acknowledged by <@U0ANA>")
	})
	remindedBefore := len(reminders(s, "C0ONCALL", root))
	if got := actionIDs(shown); got != "herald_open" {
		t.Errorf("acknowledged root buttons %q, want only the link", got)
	}
	if !strings.Contains(shown.Text, "acknowledged by U0ANA") {
		t.Errorf("root text %q", shown.Text)
	}
	// A second click (another responder, the same message) changes nothing.
	if r := heraldtest.SendInteraction(t, interactions, secret, bob, time.Now()); r.Status != http.StatusOK {
		t.Fatalf("second ack: %d %s", r.Status, r.Body)
	}
	acks := ledger[event.IncidentAcknowledged](t, a.Bus)
	if len(acks) != 1 || acks[0].By != "U0ANA" || acks[0].Via != "slack" || acks[0].Channel != "C0ONCALL" ||
		acks[0].MessageTS != root.TS || acks[0].At.IsZero() {
		t.Errorf("acks %+v", acks)
	}
	// The API says the same: the first ack stands.
	r := a.Do(t, "POST", "/v1/incidents/"+acked.id+"/ack", map[string]string{"by": "carol"})
	if r.Status != http.StatusOK || r.JSON(t)["created"] != false ||
		r.JSON(t)["acknowledgement"].(map[string]any)["by"] != "U0ANA" {
		t.Errorf("API ack of an acknowledged incident: %d %s", r.Status, r.Body)
	}

	// An escalation to P1 of an acknowledged incident is replied, not broadcast.
	acked.escalate("P1")
	var escalation heraldtest.SlackMessage
	waitSlack(t, s, "the escalation reply", func() bool {
		for _, m := range s.Messages("C0ONCALL") {
			if m.ThreadTS == root.TS && strings.HasPrefix(m.Text, "Escalated") {
				escalation = m
				return true
			}
		}
		return false
	})
	if escalation.Broadcast {
		t.Error("the escalation of an acknowledged incident was broadcast to the channel")
	}
	// The other incident goes on being reminded; the acknowledged one not.
	otherBefore := len(reminders(s, "C0ONCALL", other))
	waitSlack(t, s, "three more reminders of the unacknowledged incident", func() bool {
		return len(reminders(s, "C0ONCALL", other)) >= otherBefore+3
	})
	if n := len(reminders(s, "C0ONCALL", root)); n != remindedBefore {
		t.Errorf("the acknowledged incident got %d reminders after its ack", n-remindedBefore)
	}
	for _, m := range s.Messages("C0ONCALL") {
		if strings.HasPrefix(m.Text, "Reminder ") && (m.ThreadTS == "" || m.Broadcast) {
			t.Errorf("a reminder outside its thread: %+v", m)
		}
	}
}

func TestAckAPI(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0ONCALL", "oncall")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(ackConfig(s, "0s")))
	pub := a.As(t, access.Incident)
	open := newIncident(t, pub, "inc-ac1000000000000a", "P2", map[string]string{"app": "shop"}).open()
	done := newIncident(t, pub, "inc-ac1000000000000b", "P2", map[string]string{"app": "bank"}).open().resolve()
	root := rootOf(t, s, "C0ONCALL", open.id)
	doneRoot := rootOf(t, s, "C0ONCALL", done.id)
	waitSlack(t, s, "the resolve's reply", func() bool {
		for _, m := range s.Messages("C0ONCALL") {
			if m.ThreadTS == doneRoot.TS && strings.HasPrefix(m.Text, "Resolved") {
				return true
			}
		}
		return false
	})

	r := a.Do(t, "POST", "/v1/incidents/"+open.id+"/ack", map[string]string{"by": "ana@shop"})
	if r.Status != http.StatusOK || r.JSON(t)["created"] != true {
		t.Fatalf("ack: %d %s", r.Status, r.Body)
	}
	ack := r.JSON(t)["acknowledgement"].(map[string]any)
	if ack["by"] != "ana@shop" || ack["via"] != "api" || ack["effective"] != true {
		t.Errorf("ack %v", ack)
	}
	waitSlack(t, s, "the root showing the ack", func() bool {
		m, _ := s.Message("C0ONCALL", root.TS)
		return strings.Contains(blocksText(t, m.Blocks), "Acknowledged by ana@shop (api)")
	})

	// Resolved wins: an ack after the resolve is recorded and changes nothing.
	edits := len(callsOf(s, "chat.update"))
	r = a.Do(t, "POST", "/v1/incidents/"+done.id+"/ack", nil)
	if r.Status != http.StatusOK || r.JSON(t)["status"] != "resolved" ||
		r.JSON(t)["acknowledgement"].(map[string]any)["effective"] != false {
		t.Errorf("ack after the resolve: %d %s", r.Status, r.Body)
	}
	for _, tt := range []struct {
		path   string
		body   any
		status int
		code   string
	}{
		{"/v1/incidents/inc-ac10000000000999/ack", nil, http.StatusNotFound, "unknown_incident"},
		{"/v1/incidents/" + open.id + "/ack", map[string]string{"who": "x"}, http.StatusBadRequest, "invalid_json"},
	} {
		if r := a.Do(t, "POST", tt.path, tt.body); r.Status != tt.status || r.JSON(t)["error"] != tt.code {
			t.Errorf("%s %v: %d %s", tt.path, tt.body, r.Status, r.Body)
		}
	}
	// Nothing was edited for the late ack (the earlier edit is done: the
	// lane of the late ack is idle, so a new edit would come at once).
	newIncident(t, pub, "inc-ac1000000000000c", "P3", map[string]string{"app": "sentinel"}).open()
	rootOf(t, s, "C0ONCALL", "inc-ac1000000000000c")
	if n := len(callsOf(s, "chat.update")); n != edits {
		t.Errorf("the ack after the resolve edited %d messages", n-edits)
	}
	st := rebuild(t, a.Bus)
	if a := st.Acks[done.id]; a == nil || a.Effective {
		t.Errorf("rebuilt ack of the resolved incident %+v", a)
	}
	if a := st.Acks[open.id]; a == nil || !a.Effective || a.By != "ana@shop" {
		t.Errorf("rebuilt ack %+v", a)
	}
	var out strings.Builder
	st.Report().Write(&out)
	if !strings.Contains(out.String(), done.id+"  by anonymous via api") || !strings.Contains(out.String(), "after its resolve") {
		t.Errorf("replay report:\n%s", out.String())
	}
}

func callsOf(s *heraldtest.Slack, method string) []heraldtest.SlackCall {
	var out []heraldtest.SlackCall
	for _, c := range s.AcceptedCalls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

func rebuild(t testing.TB, b *bus.Bus) *notifier.State {
	t.Helper()
	st, err := notifier.Rebuild(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// An ack racing the resolve: whatever the interleaving, the notifier's
// answer and a rebuild from its log agree on which came first. A third of
// the incidents are acknowledged once their resolve is routed (the ack
// changes nothing), a third before they resolve, a third at the same time.
func TestAckRacingResolveRebuildsTheSame(t *testing.T) {
	const incidents = 30
	b := heraldtest.JetStream(t)
	n := start(t, b, notifier.DefaultConfig(), &heraldtest.Buffer{})
	var incs []*incident
	for i := range incidents {
		incs = append(incs, newIncident(t, b, fmt.Sprintf("inc-ac2%013d", i), "P3", map[string]string{"app": "shop"}).open())
	}
	routed := func(n int) func() bool {
		return func() bool { return count(t, b, "notifications.notification_routed.>") == n }
	}
	heraldtest.Eventually(t, 10*time.Second, "every opening routed", routed(incidents))
	effective := make([]bool, incidents)
	ack := func(i int) {
		res, err := n.Acknowledge(context.Background(), event.IncidentAcknowledged{IncidentID: incs[i].id, By: "U0ANA",
			Via: "slack", At: time.Now().UTC()})
		if err != nil {
			t.Error(err)
			return
		}
		effective[i] = res.Acknowledgement.Effective
	}
	for i := 0; i < incidents; i += 3 {
		incs[i].resolve()
	}
	heraldtest.Eventually(t, 10*time.Second, "the first third resolved", routed(incidents+incidents/3))
	var wg sync.WaitGroup
	for i := range incs {
		switch i % 3 {
		case 0:
			ack(i)
		case 1:
			ack(i)
			incs[i].resolve()
		case 2:
			wg.Add(2)
			go func() { defer wg.Done(); incs[i].resolve() }()
			go func() { defer wg.Done(); ack(i) }()
		}
	}
	wg.Wait()
	heraldtest.Eventually(t, 10*time.Second, "every resolve routed", routed(2*incidents))
	st := rebuild(t, b)
	raced := 0
	for i, inc := range incs {
		a := st.Acks[inc.id]
		if a == nil || a.Effective != effective[i] {
			t.Errorf("%s: the notifier answered effective=%v, the rebuild says %+v", inc.id, effective[i], a)
		}
		switch {
		case i%3 == 0 && effective[i]:
			t.Errorf("%s: an ack after the resolve counted", inc.id)
		case i%3 == 1 && !effective[i]:
			t.Errorf("%s: an ack before the resolve did not count", inc.id)
		case i%3 == 2 && !effective[i]:
			raced++
		}
	}
	t.Logf("%d of %d racing acks came after their resolve", raced, incidents/3)
}

func TestAckPrecedenceInTheFold(t *testing.T) {
	const id = "inc-ac3000000000000a"
	opened := incidentEvent(event.IncidentOpened{IncidentID: id, Rule: "r", Severity: "P2", OpenedAt: onset}, 0)
	resolved := incidentEvent(event.IncidentResolved{IncidentID: id, Rule: "r", OpenedAt: onset, ResolvedAt: onset.Add(time.Minute), PeakSeverity: "P2"}, 1)
	routed := func(key string) *event.Event {
		return event.New("notifier", event.NotificationRouted{IncidentID: id, Transition: key, Destinations: []string{"console"}})
	}
	ack := func(by string) *event.Event {
		return event.New("notifier", event.IncidentAcknowledged{IncidentID: id, By: by, Via: "api", At: onset})
	}
	tests := []struct {
		name      string
		ledger    []*event.Event
		by        string
		effective bool
	}{
		{"ack while open", []*event.Event{routed("opened"), ack("ana")}, "ana", true},
		{"ack then resolve", []*event.Event{routed("opened"), ack("ana"), routed("resolved-1")}, "ana", true},
		{"resolve then ack", []*event.Event{routed("opened"), routed("resolved-1"), ack("ana")}, "ana", false},
		{"the first ack stands", []*event.Event{routed("opened"), ack("ana"), ack("bob")}, "ana", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := notifier.NewState()
			// As a rebuild does: the incidents' log first (the resolve is
			// known), then the ledger in its order.
			for _, e := range append([]*event.Event{opened, resolved}, tt.ledger...) {
				st.Apply(e)
			}
			a := st.Acks[id]
			if a == nil || a.By != tt.by || a.Effective != tt.effective {
				t.Errorf("ack %+v, want by %s effective %v", a, tt.by, tt.effective)
			}
		})
	}
}

func incidentEvent(d event.Data, ord int) *event.Event {
	return event.New("incident", d, event.WithSubject(fmt.Sprintf("incidents.%s.%s.%d", d.EventType(), "inc-ac3000000000000a", ord)))
}

// The "Silence 1 h" button is there only when a silencer backs it, and a
// click on it reaches the silencer with who clicked.
func TestSilenceButtonReachesTheSilencer(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0ONCALL", "oncall")
	cfg := webAPIConfig(s, "C0ONCALL")
	cfg.Slack.SigningSecret = secret
	n, err := notifier.New(cfg, notifier.Deps{Bus: b, Log: heraldtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	type silence struct {
		id, by string
		d      time.Duration
	}
	silenced := make(chan silence, 1)
	n.SetSilencer(func(_ context.Context, id, by string, d time.Duration) error {
		silenced <- silence{id, by, d}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, n) })
	mux := http.NewServeMux()
	for _, r := range n.Routes(1 << 20) {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	inc := newIncident(t, b, "inc-ac4000000000000a", "P2", map[string]string{"app": "shop"}).open()
	root := rootOf(t, s, "C0ONCALL", inc.id)
	if got := actionIDs(root); got != "herald_ack herald_silence_1h" {
		t.Errorf("buttons %q (no publicURL: no link)", got)
	}
	if r := s.Click(t, srv.URL+"/v1/slack/interactions", secret, "C0ONCALL", root.TS, "U0ANA", "herald_silence_1h"); r.Status != http.StatusOK {
		t.Fatalf("click: %d %s", r.Status, r.Body)
	}
	select {
	case got := <-silenced:
		if got != (silence{inc.id, "U0ANA", time.Hour}) {
			t.Errorf("silenced %+v", got)
		}
	default:
		t.Error("the silencer was not called")
	}
}
