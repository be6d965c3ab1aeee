package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/services/notifier"
	"github.com/heraldhq/herald/streams"
)

// Silences decide from event time, so these incidents happen now (the
// others of this package happen on a fixed day in the past).

func (i *incident) openAt(at time.Time) *incident {
	i.publish(event.IncidentOpened{IncidentID: i.id, Rule: "otp-failure-rate", Kind: "ratio", Severity: i.sev,
		Group: i.group, OpenedAt: at, Summary: i.group["app"] + ": OTP sends failing", Evidence: evidence(23, 100)}, at)
	return i
}

func (i *incident) escalateAt(to string, at time.Time) *incident {
	i.publish(event.IncidentEscalated{IncidentID: i.id, Rule: "otp-failure-rate", Group: i.group, From: i.sev, To: to,
		At: at, Evidence: evidence(61, 100)}, at)
	i.sev = to
	if to < i.peak {
		i.peak = to
	}
	return i
}

func (i *incident) resolveAt(opened, at time.Time) *incident {
	i.publish(event.IncidentResolved{IncidentID: i.id, Rule: "otp-failure-rate", Group: i.group, OpenedAt: opened,
		ResolvedAt: at, PeakSeverity: i.peak, Evidence: evidence(0, 100)}, at)
	return i
}

func silenceConfig(s *heraldtest.Slack) string {
	return fmt.Sprintf(`
notifier:
  slack: {apiURL: %q, botToken: %q, signingSecret: %q}
  rateLimit: {perSecond: 50, burst: 5, update: {perMinute: 6000, burst: 50}}
  retry: {initial: 50ms, max: 200ms}
  routes:
    - {name: shop, match: {app: shop}, channels: [C0SHOP]}
    - {name: sentinel, match: {app: sentinel}, channels: [C0SHOP]}
`, s.APIURL, s.Token, secret)
}

func startSilenceApp(t *testing.T) (*heraldtest.Slack, *apptest.App) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0SHOP", "shop-alerts")
	return s, apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(silenceConfig(s)))
}

// callsAbout are the accepted calls about an incident: those naming it,
// and the replies in its roots' threads.
func callsAbout(calls []heraldtest.SlackCall, id string) []heraldtest.SlackCall {
	var out []heraldtest.SlackCall
	roots := map[string]bool{}
	for _, c := range accepted(calls) {
		names := strings.Contains(c.Text+string(c.Blocks)+string(c.Body), id)
		if names && c.Method == "chat.postMessage" && c.ThreadTS == "" {
			roots[c.TS] = true
		}
		if names || (c.ThreadTS != "" && roots[c.ThreadTS]) {
			out = append(out, c)
		}
	}
	return out
}

func methods(calls []heraldtest.SlackCall) string {
	var m []string
	for _, c := range calls {
		kind := c.Method
		if c.ThreadTS != "" {
			kind += "(reply)"
		}
		m = append(m, kind)
	}
	return strings.Join(m, " ")
}

// suppressedInLedger lists the notification_suppressed entries as
// State.Suppressions does.
func suppressedInLedger(t *testing.T, b *bus.Bus) []string {
	t.Helper()
	var out []string
	for _, e := range ledger[event.NotificationSuppressed](t, b) {
		out = append(out, e.IncidentID+"/"+e.Transition+"/"+e.Destination+" by "+e.SilenceID)
	}
	sort.Strings(out)
	return out
}

// Long on purpose: one story through a maintenance window, told in order.
// Incidents: A announced before the silence, escalates in it (held) and
// resolves after; B opens and escalates in it (held) and is announced
// once when it ends; C opens and resolves in it (both held, nothing
// posted); D announced before, resolves in it (posted: its root must not
// stay open). Then a fresh notifier, given only INCIDENTS and the
// silences, decides the same suppressions.
func TestASilenceHoldsNotificationsAndAnnouncesWhatIsStillOpenWhenItEnds(t *testing.T) {
	s, a := startSilenceApp(t)
	inc := a.As(t, access.Incident)
	shop := func(provider string) map[string]string { return map[string]string{"app": "shop", "provider": provider} }
	before := time.Now()
	A := newIncident(t, inc, "inc-5110000000000a01", "P3", shop("fast2sms")).openAt(before)
	D := newIncident(t, inc, "inc-5110000000000d01", "P2", shop("fast2sms")).openAt(before)
	waitCalls(t, s, 2, 5*time.Second)

	r := a.Do(t, "POST", "/v1/silences", map[string]any{
		"matchers": []map[string]any{{"name": "provider", "value": "fast2sms"}, {"name": "app", "value": "sh.p", "isRegex": true}},
		"duration": "3s", "createdBy": "ana", "comment": "Fast2SMS planned maintenance"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	sil := r.JSON(t)["silence"].(map[string]any)
	id := sil["id"].(string)
	if sil["status"] != "active" || sil["via"] != "api" {
		t.Errorf("silence %v", sil)
	}
	in := time.Now()
	A.escalateAt("P2", in)
	D.resolveAt(before, in)
	B := newIncident(t, inc, "inc-5110000000000b01", "P3", shop("fast2sms")).openAt(in).escalateAt("P1", in)
	C := newIncident(t, inc, "inc-5110000000000c01", "P2", shop("fast2sms")).openAt(in).resolveAt(in, in)
	other := newIncident(t, inc, "inc-5110000000000e01", "P2", shop("twilio")).openAt(in) // not matched
	heraldtest.Eventually(t, 5*time.Second, "the held notifications recorded", func() bool {
		return count(t, a.Bus, "notifications.notification_suppressed.>") == 5
	})
	want := []string{
		"inc-5110000000000a01/escalated-1/C0SHOP by " + id,
		"inc-5110000000000b01/escalated-1/C0SHOP by " + id,
		"inc-5110000000000b01/opened/C0SHOP by " + id,
		"inc-5110000000000c01/opened/C0SHOP by " + id,
		"inc-5110000000000c01/resolved-1/C0SHOP by " + id,
	}
	if got := suppressedInLedger(t, a.Bus); !slices.Equal(got, want) {
		t.Errorf("suppressed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The window ends: B (still open) gets one root showing P1, A's root
	// is edited to its current state, C (resolved) nothing.
	heraldtest.Eventually(t, 10*time.Second, "the announcement of B when the window ends", func() bool {
		return count(t, a.Bus, "notifications.slack_message_posted.inc-5110000000000b01.>") == 1
	})
	calls := flush(t, inc, a.Bus, s, 1)
	if b := callsAbout(calls, B.id); len(b) != 1 || b[0].Method != "chat.postMessage" || b[0].ThreadTS != "" ||
		!strings.HasPrefix(b[0].Text, "[P1]") {
		t.Errorf("B when the window ended:%s", describe(b))
	}
	if c := callsAbout(calls, C.id); len(c) != 0 {
		t.Errorf("C, opened and resolved in the window, was posted:%s", describe(c))
	}
	if got := methods(callsAbout(calls, A.id)); got != "chat.postMessage chat.update" {
		t.Errorf("A: %s, want its root and one edit to the state it reached in the window", got)
	}
	if got := methods(callsAbout(calls, D.id)); got != "chat.postMessage chat.update chat.postMessage(reply)" {
		t.Errorf("D, announced before and resolved in the window: %s, want its resolve posted", got)
	}
	if got := methods(callsAbout(calls, other.id)); got != "chat.postMessage" {
		t.Errorf("an incident the silence does not match: %s", got)
	}

	// After the window, notifications go as usual.
	now := time.Now()
	A.resolveAt(before, now)
	B.resolveAt(in, now)
	// The resolve replies wait behind their roots' edits (pacing), which
	// flush does not cover: wait for their ledger records first.
	for _, x := range []*incident{A, B} {
		heraldtest.Eventually(t, 10*time.Second, "the resolve reply of "+x.id, func() bool {
			return count(t, a.Bus, "notifications.slack_message_posted."+x.id+".>") == 2
		})
	}
	calls = flush(t, inc, a.Bus, s, 1)
	if got := methods(callsAbout(calls, B.id)); got != "chat.postMessage chat.update chat.postMessage(reply)" {
		t.Errorf("B resolved after the window: %s", got)
	}
	if got := methods(callsAbout(calls, A.id)); got != "chat.postMessage chat.update chat.update chat.postMessage(reply)" {
		t.Errorf("A resolved after the window: %s (the held escalation gets no reply)", got)
	}
	if r := a.Do(t, "GET", "/v1/silences?all=true", nil).JSON(t)["silences"].([]any); len(r) != 1 ||
		r[0].(map[string]any)["status"] != "expired" || r[0].(map[string]any)["suppressed"] != float64(5) {
		t.Errorf("silences after the window: %v", r)
	}

	// A rebuild folds the same suppressions, and so does a fresh notifier
	// that decides them again from INCIDENTS and the silences alone.
	st, err := notifier.Rebuild(context.Background(), a.Bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Suppressions(); !slices.Equal(got, want) {
		t.Errorf("rebuilt:\n%s", strings.Join(got, "\n"))
	}
	if got := rederive(t, a.Bus); !slices.Equal(got, want) {
		t.Errorf("decided again by a fresh notifier:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// And a restart changes nothing: nothing posted again.
	n := len(s.Calls())
	a.Restart(t)
	if calls := flush(t, a.As(t, access.Incident), a.Bus, s, 1); len(calls) != n-2 { // less the two sentinels
		t.Errorf("after a restart:%s", describe(calls[n-2:]))
	}
}

// rederive copies INCIDENTS and the silence events of b to a new event
// log, runs a notifier on it (console only) and answers the suppressions
// it records.
func rederive(t *testing.T, b *bus.Bus) []string {
	t.Helper()
	fresh := heraldtest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	copyEvents := func(stream string, filters ...string) int {
		n := 0
		for _, e := range heraldtest.Events(t, b, stream, filters...) {
			c := event.New(e.Source, e.Data, event.WithID(e.ID), event.WithSubject(e.Subject), event.WithTime(e.Time))
			if _, err := fresh.PublishOnce(ctx, c); err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	copyEvents(streams.Notifications, "notifications.silence_created.>", "notifications.silence_expired.>")
	transitions := copyEvents(streams.Incidents)
	cfg := notifier.DefaultConfig()
	cfg.Routes = []notifier.Route{{Name: "shop", Match: event.SubscriptionMatch{App: "shop"}, Channels: []string{"C0SHOP"}}}
	start(t, fresh, cfg, &heraldtest.Buffer{})
	heraldtest.Eventually(t, 10*time.Second, "every transition routed again", func() bool {
		return count(t, fresh, "notifications.notification_routed.*.*") == transitions
	})
	return suppressedInLedger(t, fresh)
}

func TestSilencesAPIRefusesBadInput(t *testing.T) {
	_, a := startSilenceApp(t)
	m := []map[string]any{{"name": "app", "value": "shop"}}
	tests := []struct {
		name string
		body any
		code string
		in   string
	}{
		{"no matcher", map[string]any{"duration": "1h", "createdBy": "ana"}, "invalid_silence", "at least one"},
		{"unknown label", map[string]any{"matchers": []map[string]any{{"name": "colour", "value": "red"}}, "duration": "1h", "createdBy": "ana"}, "invalid_silence", "colour"},
		{"bad regex", map[string]any{"matchers": []map[string]any{{"name": "app", "value": "(", "isRegex": true}}, "duration": "1h", "createdBy": "ana"}, "invalid_silence", "matchers[0].value"},
		{"no end", map[string]any{"matchers": m, "createdBy": "ana"}, "invalid_silence", "needs an end"},
		{"end before start", map[string]any{"matchers": m, "endsAt": time.Now().Add(-time.Hour), "createdBy": "ana"}, "invalid_silence", "not after"},
		{"end and duration", map[string]any{"matchers": m, "endsAt": time.Now().Add(time.Hour), "duration": "1h", "createdBy": "ana"}, "invalid_silence", "not both"},
		{"bad duration", map[string]any{"matchers": m, "duration": "soon", "createdBy": "ana"}, "invalid_silence", "duration"},
		{"no creator", map[string]any{"matchers": m, "duration": "1h"}, "invalid_silence", "createdBy"},
		{"bad day", map[string]any{"matchers": m, "createdBy": "ana", "recurring": map[string]any{"days": []string{"funday"}, "start": "22:00", "duration": "2h", "timeZone": "UTC"}}, "invalid_silence", "funday"},
		{"bad time of day", map[string]any{"matchers": m, "createdBy": "ana", "recurring": map[string]any{"days": []string{"sat"}, "start": "25:00", "duration": "2h", "timeZone": "UTC"}}, "invalid_silence", "recurring.start"},
		{"bad zone", map[string]any{"matchers": m, "createdBy": "ana", "recurring": map[string]any{"days": []string{"sat"}, "start": "22:00", "duration": "2h", "timeZone": "Mars/Olympus"}}, "invalid_silence", "timeZone"},
		{"window too long", map[string]any{"matchers": m, "createdBy": "ana", "recurring": map[string]any{"days": []string{"sat"}, "start": "22:00", "duration": "200h", "timeZone": "UTC"}}, "invalid_silence", "recurring.duration"},
		{"unknown field", map[string]any{"matchers": m, "duration": "1h", "createdBy": "ana", "colour": "red"}, "invalid_json", "colour"},
		{"not JSON", `{"matchers":`, "invalid_json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.Do(t, "POST", "/v1/silences", tt.body)
			if r.Status != http.StatusBadRequest || r.JSON(t)["error"] != tt.code || !strings.Contains(string(r.Body), tt.in) {
				t.Errorf("%d %s", r.Status, r.Body)
			}
		})
	}
	if n := count(t, a.Bus, "notifications.silence_created.>"); n != 0 {
		t.Errorf("%d silences recorded from bad input", n)
	}
	if r := a.Do(t, "DELETE", "/v1/silences/sil-0000000000000000", nil); r.Status != http.StatusNotFound || r.JSON(t)["error"] != "unknown_silence" {
		t.Errorf("expire unknown: %d %s", r.Status, r.Body)
	}
}

// Expiring a silence early announces at once what it held, records who
// ended it, and a second expiry is a 409.
func TestExpiringASilenceEarlyAnnouncesWhatItHeld(t *testing.T) {
	s, a := startSilenceApp(t)
	inc := a.As(t, access.Incident)
	r := a.Do(t, "POST", "/v1/silences", map[string]any{"matchers": []map[string]any{{"name": "rule", "value": "otp-failure-rate"}},
		"duration": "1h", "createdBy": "ana"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["silence"].(map[string]any)["id"].(string)
	X := newIncident(t, inc, "inc-5110000000000f01", "P2", map[string]string{"app": "shop"}).openAt(time.Now())
	heraldtest.Eventually(t, 5*time.Second, "the opening held", func() bool {
		return count(t, a.Bus, "notifications.notification_suppressed.>") == 1
	})
	if calls := flush(t, inc, a.Bus, s, 1); len(callsAbout(calls, X.id)) != 0 {
		t.Fatalf("held, and posted:%s", describe(calls))
	}
	r = a.Do(t, "DELETE", "/v1/silences/"+id+"?by=bob", nil)
	if r.Status != http.StatusOK || r.JSON(t)["silence"].(map[string]any)["status"] != "expired" {
		t.Fatalf("expire: %d %s", r.Status, r.Body)
	}
	heraldtest.Eventually(t, 5*time.Second, "the announcement", func() bool {
		return count(t, a.Bus, "notifications.slack_message_posted."+X.id+".>") == 1
	})
	if e := ledger[event.SilenceExpired](t, a.Bus); len(e) != 1 || e[0].By != "bob" || e[0].Via != "api" || e[0].SilenceID != id {
		t.Errorf("expired %+v", e)
	}
	if r := a.Do(t, "DELETE", "/v1/silences/"+id, nil); r.Status != http.StatusConflict || r.JSON(t)["error"] != "silence_expired" {
		t.Errorf("expire again: %d %s", r.Status, r.Body)
	}
	if r := a.Do(t, "GET", "/v1/silences", nil).JSON(t)["silences"].([]any); len(r) != 0 {
		t.Errorf("an expired silence is listed without all=true: %v", r)
	}
	// Announced once: a restart does not announce it again.
	a.Restart(t)
	if calls := flush(t, a.As(t, access.Incident), a.Bus, s, 1); len(callsAbout(calls, X.id)) != 1 {
		t.Errorf("after a restart:%s", describe(callsAbout(calls, X.id)))
	}
}

// A weekly window holds only inside its windows: one that contains now
// holds, one of another day does not.
func TestARecurringWindowHoldsOnlyInsideItsWindows(t *testing.T) {
	_, a := startSilenceApp(t)
	inc := a.As(t, access.Incident)
	now := time.Now().In(time.FixedZone("X", 0))
	day := func(t time.Time) string { return strings.ToLower(t.Weekday().String()[:3]) }
	window := func(d time.Time, app string) {
		d = d.Add(-time.Minute) // a window that started a minute ago (that day)
		r := a.Do(t, "POST", "/v1/silences", map[string]any{"matchers": []map[string]any{{"name": "app", "value": app}},
			"createdBy": "ana", "comment": "weekly deploys",
			"recurring": map[string]any{"days": []string{day(d)}, "start": d.Format("15:04"), "duration": "2h", "timeZone": "UTC"}})
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
	window(now, "shop")
	window(now.Add(48*time.Hour), "bank")
	if r := a.Do(t, "GET", "/v1/silences", nil).JSON(t)["silences"].([]any); len(r) != 2 {
		t.Fatalf("silences %v", r)
	} else {
		status := map[string]bool{}
		for _, s := range r {
			status[s.(map[string]any)["status"].(string)] = true
		}
		if !status["active"] || !status["pending"] {
			t.Errorf("statuses %v", status)
		}
	}
	shop := newIncident(t, inc, "inc-5110000000001001", "P2", map[string]string{"app": "shop"}).openAt(time.Now())
	bank := newIncident(t, inc, "inc-5110000000001002", "P2", map[string]string{"app": "bank"}).openAt(time.Now())
	heraldtest.Eventually(t, 5*time.Second, "both routed", func() bool {
		return count(t, a.Bus, "notifications.notification_routed.*.*") == 2
	})
	if got := suppressedInLedger(t, a.Bus); len(got) != 1 || !strings.HasPrefix(got[0], shop.id+"/opened/") {
		t.Errorf("suppressed %v (bank %s is outside its window)", got, bank.id)
	}
}

func TestSlashCommandSilences(t *testing.T) {
	_, a := startSilenceApp(t)
	now := time.Now()
	r := command(t, a, "silence provider=fast2sms app=~sh.* for 2h Fast2SMS maintenance", "C0SHOP", now, secret).JSON(t)
	text, _ := r["text"].(string)
	if r["response_type"] != "in_channel" || !strings.Contains(text, "silenced provider=fast2sms app=~sh.*") {
		t.Fatalf("silence: %v", r)
	}
	created := ledger[event.SilenceCreated](t, a.Bus)
	if len(created) != 1 || created[0].Via != "slack" || created[0].CreatedBy != "U2147483697" ||
		created[0].Comment != "Fast2SMS maintenance" || !created[0].Matchers[1].IsRegex ||
		created[0].EndsAt.Sub(created[0].StartsAt) != 2*time.Hour {
		t.Fatalf("created %+v", created)
	}
	id := created[0].SilenceID
	if r := command(t, a, "silence list", "C0SHOP", now, secret).JSON(t); !strings.Contains(r["text"].(string), id) {
		t.Errorf("list: %v", r)
	}
	for _, bad := range []struct{ text, want string }{
		{"silence provider=fast2sms", "say for how long"},
		{"silence colour=red for 1h", "colour"},
		{"silence app=shop for soon", "duration"},
		{"silence expire sil-0000000000000000", "No silence"},
	} {
		if r := command(t, a, bad.text, "C0SHOP", now, secret).JSON(t); r["response_type"] != "ephemeral" ||
			!strings.Contains(r["text"].(string), bad.want) {
			t.Errorf("%q: %v", bad.text, r)
		}
	}
	r = command(t, a, "silence expire "+id, "C0SHOP", now, secret).JSON(t)
	if r["response_type"] != "in_channel" || !strings.Contains(r["text"].(string), "ended the silence") {
		t.Errorf("expire: %v", r)
	}
	if e := ledger[event.SilenceExpired](t, a.Bus); len(e) != 1 || e[0].Via != "slack" || e[0].By != "U2147483697" {
		t.Errorf("expired %+v", e)
	}
}

// TestSilenceOneHourFromSlackSilencesTheIncidentsRuleAndGroup: the root's
// button creates a silence of the incident's rule and group for an hour,
// by the user who clicked.
func TestSilenceOneHourFromSlackSilencesTheIncidentsRuleAndGroup(t *testing.T) {
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0ONCALL", "oncall")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(fmt.Sprintf(`
notifier:
  slack: {apiURL: %q, botToken: %q, signingSecret: %q}
  routes: [{name: oncall, channels: [C0ONCALL]}]
`, s.APIURL, s.Token, secret)))
	inc := newIncident(t, a.As(t, access.Incident), "inc-5110000000000c01", "P2", map[string]string{"app": "shop", "provider": "fast2sms"}).open()
	root := rootOf(t, s, "C0ONCALL", inc.id)
	if r := s.Click(t, a.URL+"/v1/slack/interactions", secret, "C0ONCALL", root.TS, "U0ANA", "herald_silence_1h"); r.Status != http.StatusOK {
		t.Fatalf("click: %d %s", r.Status, r.Body)
	}
	var got []any
	heraldtest.Eventually(t, 10*time.Second, "the silence", func() bool {
		got, _ = a.Do(t, "GET", "/v1/silences", nil).JSON(t)["silences"].([]any)
		return len(got) == 1
	})
	sil := got[0].(map[string]any)
	if sil["createdBy"] != "U0ANA" || sil["via"] != "slack" || sil["status"] != "active" ||
		!strings.Contains(fmt.Sprint(sil["matchers"]), "rule") || !strings.Contains(fmt.Sprint(sil["matchers"]), "fast2sms") {
		t.Errorf("silence %v", sil)
	}
}

// TestTheNotifiersViewOfAnIncidentGivesItsPermalinkAndAcknowledgement: what
// the console shows beside an incident.
func TestTheNotifiersViewOfAnIncidentGivesItsPermalinkAndAcknowledgement(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0ONCALL", "oncall")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(fmt.Sprintf(`
notifier:
  slack: {apiURL: %q, botToken: %q, workspaceURL: "https://acme.slack.com"}
  routes: [{name: oncall, channels: [C0ONCALL]}]
`, s.APIURL, s.Token)))
	inc := newIncident(t, a.As(t, access.Incident), "inc-5110000000000d01", "P2", map[string]string{"app": "shop"}).open()
	root := rootOf(t, s, "C0ONCALL", inc.id)
	if r := a.Do(t, "POST", "/v1/incidents/"+inc.id+"/ack", map[string]string{"by": "ana"}); r.Status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.Status, r.Body)
	}
	var v struct {
		Acknowledgement *struct{ By string }
		Messages        []struct{ Destination, Permalink string }
	}
	var r *heraldtest.Response
	// The root is in the view once its ledger entry is folded, just after
	// Slack answered.
	heraldtest.Eventually(t, 10*time.Second, "the root in the notifier's view", func() bool {
		r = a.Do(t, "GET", "/v1/incidents/"+inc.id+"/notifications", nil)
		if err := json.Unmarshal(r.Body, &v); r.Status != http.StatusOK || err != nil {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		return len(v.Messages) > 0 && v.Acknowledgement != nil
	})
	want := "https://acme.slack.com/archives/C0ONCALL/p" + strings.ReplaceAll(root.TS, ".", "")
	if len(v.Messages) != 1 || v.Messages[0].Permalink != want || v.Acknowledgement == nil || v.Acknowledgement.By != "ana" {
		t.Errorf("view %s, want the permalink %s and ana's acknowledgement", r.Body, want)
	}
	if r := a.Do(t, "GET", "/v1/incidents/inc-nope0000/notifications", nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown incident: %d", r.Status)
	}
}
