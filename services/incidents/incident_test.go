package incidents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/services/incidents"
	"github.com/heraldhq/herald/streams"
)

// fastRules are short-fused versions of the default rules, so that the wall
// clock (through clock ticks) opens and resolves incidents within a test.
const fastRules = `
incident:
  defaultRules: false
  tickInterval: 20ms
  checkpointInterval: 200ms
  rules:
    - name: otp-failure-rate
      kind: ratio
      match: {types: [otp_delivery_completed]}
      failed: {where: ["status = failed"]}
      groupBy: [app]
      window: 3s
      resolution: 1s
      minVolume: 4
      severities:
        - {level: P1, above: 0.5, for: 1s}
        - {level: P3, above: 0}
      resolve: {for: 500ms}
    - name: provider-no-success
      kind: absence
      match: {types: [provider_response_received]}
      activity: {types: [provider_response_failed]}
      groupBy: [provider]
      severities: [{level: P2, after: 1500ms}]
`

type input struct {
	Type      string          `json:"type"`
	Source    string          `json:"source"`
	Time      time.Time       `json:"time"`
	RequestID string          `json:"requestid,omitempty"`
	Data      json.RawMessage `json:"data"`
}

// post records events as the services that own them do (on the bus: POST
// /v1/events refuses types that Herald's services publish).
func post(t *testing.T, a *apptest.App, ins ...input) {
	t.Helper()
	a.PublishInputs(t, ins)
}

func send(status string, at time.Time, i int) input {
	return input{Type: "otp_delivery_completed", Source: "test", Time: at, RequestID: fmt.Sprintf("req-%d", i),
		Data: json.RawMessage(fmt.Sprintf(`{"app":"shop","status":%q,"attempts":1,"latencyMs":10}`, status))}
}

func provider(typ string, at time.Time, code int) input {
	class := "ok"
	if code != 200 {
		class = "transient"
	}
	return input{Type: typ, Source: "test", Time: at,
		Data: json.RawMessage(fmt.Sprintf(`{"app":"shop","provider":"twilio","route":"q","statusCode":%d,"classification":%q,"attempt":1,"latencyMs":5}`, code, class))}
}

func list(t *testing.T, a *apptest.App, query string) incidents.ListPage {
	t.Helper()
	r := a.Do(t, "GET", "/v1/incidents"+query, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/incidents%s: %d %s", query, r.Status, r.Body)
	}
	var p incidents.ListPage
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// liveIncidents reads every incident in full through the API.
func liveIncidents(t *testing.T, a *apptest.App) (uint64, []*incident.Incident) {
	t.Helper()
	p := list(t, a, "?limit=1000")
	var out []*incident.Incident
	for _, s := range p.Incidents {
		r := a.Do(t, "GET", "/v1/incidents/"+s.ID, nil)
		var inc incident.Incident
		if err := json.Unmarshal(r.Body, &inc); err != nil || r.Status != http.StatusOK {
			t.Fatalf("GET /v1/incidents/%s: %d %s", s.ID, r.Status, r.Body)
		}
		out = append(out, &inc)
	}
	return p.Seq, out
}

func lastSeq(t *testing.T, a *apptest.App) uint64 {
	t.Helper()
	s, err := a.Bus.JS.Stream(context.Background(), streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func canon(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLiveProjectionEqualsARebuildFromZero is long on purpose: one story
// told in order (a live app, its incidents, a rebuild, the comparison),
// whose steps depend on the ones before.
func TestLiveProjectionEqualsARebuildFromZero(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithConfig(fastRules), apptest.WithTargets("dispatcher", "incident"))
	now := time.Now().UTC()
	// The provider answers once, then only fails: no success for 1.5 s
	// while it is being called opens the absence incident at last 200 +
	// 1.5 s, which only the wall clock (a clock tick) can reveal.
	post(t, a, provider("provider_response_received", now, 200), provider("provider_response_failed", now.Add(100*time.Millisecond), 504))
	// Half of the OTP sends fail: P3 at once, P1 after 1 s (a tick again).
	var sends []input
	for i := range 8 {
		st := "delivered"
		if i%4 != 0 {
			st = "failed"
		}
		sends = append(sends, send(st, now.Add(time.Duration(i)*10*time.Millisecond), i))
	}
	post(t, a, sends...)
	heraldtest.Eventually(t, 10*time.Second, "the absence incident and the P1 escalation", func() bool {
		p := list(t, a, "?state=open")
		sev := map[string]string{}
		for _, s := range p.Incidents {
			sev[s.Rule] = s.Severity
		}
		return sev["provider-no-success"] == "P2" && sev["otp-failure-rate"] == "P1"
	})
	// The next 200 resolves the absence; the failures age out of the window.
	post(t, a, provider("provider_response_received", time.Now().UTC(), 200))
	heraldtest.Eventually(t, 15*time.Second, "every incident resolved", func() bool {
		p := list(t, a, "?state=resolved")
		return len(p.Incidents) == 2 && len(list(t, a, "?state=open").Incidents) == 0
	})
	// Quiet now (no deadline left, so no more ticks): the projection has
	// folded the whole log.
	heraldtest.Eventually(t, 5*time.Second, "the projection caught up", func() bool {
		return list(t, a, "").Seq == lastSeq(t, a)
	})
	seq, live := liveIncidents(t, a)
	ticks := heraldtest.Events(t, a.Bus, streams.Events, "events.clock_tick")
	if len(ticks) == 0 {
		t.Fatal("no clock tick in the log: the wall clock was not recorded")
	}
	for _, inc := range live {
		if inc.Rule == "provider-no-success" && !inc.OpenedAt.Equal(now.Add(1500*time.Millisecond)) {
			t.Errorf("absence opened at %s, want last 200 + 1.5 s = %s", inc.OpenedAt, now.Add(1500*time.Millisecond))
		}
	}

	// Rebuild from zero into a fresh projection: same incidents, exactly.
	fresh := incident.NewEngine(incident.Options{Catalog: a.Bus.Catalog})
	var transitions []*event.Event
	err := incident.Read(context.Background(), a.Bus.JS, incident.ReadOptions{MaxSkew: time.Minute}, func(rec *incident.Record, _ incident.Position) error {
		fresh.Apply(rec)
		transitions = append(transitions, fresh.Drain()...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Seq() != seq {
		t.Fatalf("fresh fold reached seq %d, live %d", fresh.Seq(), seq)
	}
	rebuilt := fresh.Incidents()
	if got, want := canon(t, rebuilt), canon(t, live); got != want {
		t.Errorf("rebuilt projection differs from the live one:\nrebuilt %s\nlive %s", got, want)
	}
	// The transitions it would publish are exactly those in INCIDENTS…
	published := heraldtest.Events(t, a.Bus, streams.Incidents)
	if len(published) != len(transitions) || len(published) < 5 {
		t.Fatalf("%d transitions rebuilt, %d published", len(transitions), len(published))
	}
	for i, p := range published {
		r := transitions[i]
		if p.ID != r.ID || p.Subject != r.Subject || !p.Time.Equal(r.Time) || p.CausationID != r.CausationID {
			t.Errorf("transition %d: published %s %s %s, rebuilt %s %s %s", i, p.ID, p.Subject, p.Time, r.ID, r.Subject, r.Time)
		}
		pb, _ := json.Marshal(p.Data)
		rb, _ := json.Marshal(r.Data)
		if string(pb) != string(rb) {
			t.Errorf("transition %s data: published %s, rebuilt %s", p.ID, pb, rb)
		}
	}
	// … so publishing them again stores nothing.
	for _, r := range transitions {
		ack, err := a.As(t, access.Incident).PublishOnce(context.Background(), r)
		if err != nil || !ack.Duplicate {
			t.Errorf("republishing %s: %+v %v", r.ID, ack, err)
		}
	}
	// The live service rebuilt from zero on demand agrees, and INCIDENTS
	// has no duplicate.
	if r := a.Do(t, "POST", "/v1/incidents/rebuild", nil); r.Status != http.StatusAccepted {
		t.Fatalf("rebuild: %d %s", r.Status, r.Body)
	}
	heraldtest.Eventually(t, 10*time.Second, "the rebuild caught up", func() bool {
		return list(t, a, "").Seq >= seq && a.Do(t, "GET", "/readyz", nil).Status == http.StatusOK
	})
	_, again := liveIncidents(t, a)
	if got, want := canon(t, again), canon(t, live); got != want {
		t.Errorf("rebuilt on demand differs:\n%s\nwant %s", got, want)
	}
	after := heraldtest.Events(t, a.Bus, streams.Incidents)
	ids := map[string]int{}
	for _, e := range after {
		ids[e.ID]++
		if ids[e.ID] > 1 {
			t.Errorf("INCIDENTS holds %s twice", e.ID)
		}
	}
	if len(after) != len(published) {
		t.Errorf("INCIDENTS has %d transitions after the rebuild, %d before", len(after), len(published))
	}
}

func TestRestartResumesFromTheCheckpoint(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithConfig(fastRules), apptest.WithTargets("dispatcher", "incident"))
	now := time.Now().UTC()
	var sends []input
	for i := range 40 {
		sends = append(sends, send("failed", now.Add(-time.Hour+time.Duration(i)*time.Minute), i))
	}
	post(t, a, sends...)
	// Caught up, and at rest: the clock escalates the incident to P1 after
	// its `for: 1s`; a snapshot taken before that would differ from one
	// after the restart by the escalation, not by the restart.
	heraldtest.Eventually(t, 10*time.Second, "caught up, the incident at P1", func() bool {
		p := list(t, a, "")
		return p.Seq == lastSeq(t, a) && len(p.Incidents) == 1 && p.Incidents[0].Severity == "P1"
	})
	seqBefore, before := liveIncidents(t, a)
	a.Restart(t)
	// The projection resumes at the checkpoint saved on stop: it folds only
	// what was appended since (the dispatcher's start-up events).
	heraldtest.Eventually(t, 10*time.Second, "caught up after restart", func() bool { return list(t, a, "").Seq == lastSeq(t, a) })
	_, after := liveIncidents(t, a)
	if canon(t, after) != canon(t, before) {
		t.Errorf("incidents changed across a restart:\n%s\nwant %s", canon(t, after), canon(t, before))
	}
	want := fmt.Sprintf("herald_incident_events_total %d\n", lastSeq(t, a)-seqBefore)
	m := a.Do(t, "GET", "/metrics", nil)
	if !strings.Contains(string(m.Body), want) {
		line := ""
		for _, l := range strings.Split(string(m.Body), "\n") {
			if strings.HasPrefix(l, "herald_incident_events_total") {
				line = l
			}
		}
		t.Errorf("after restart: %s, want %s", line, want)
	}
	kv, err := a.As(t, access.Incident).JS.KeyValue(context.Background(), incidents.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), "checkpoint"); err != nil {
		t.Errorf("no checkpoint manifest: %v", err)
	}
}

func TestReloadKeepsStateAndRecordsTheRulesInTheLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(path, []byte(fastRules), 0o600); err != nil {
		t.Fatal(err)
	}
	a := apptest.StartApp(t, apptest.WithConfigFile(path), apptest.WithTargets("dispatcher", "incident"))
	now := time.Now().UTC()
	post(t, a, provider("provider_response_failed", now.Add(-time.Hour), 504), provider("provider_response_failed", now, 504))
	heraldtest.Eventually(t, 10*time.Second, "absence incident", func() bool { return len(list(t, a, "?state=open&rule=provider-no-success").Incidents) == 1 })
	open := list(t, a, "?state=open").Incidents[0]

	// An invalid file is refused and changes nothing.
	if err := os.WriteFile(path, []byte(strings.Replace(fastRules, "minVolume: 4", "minVolume: many", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.App.Reload(context.Background()); err == nil {
		t.Error("an invalid configuration was accepted")
	}
	// A new rule set: the failure-rate rule changes, the absence rule not.
	changed := strings.Replace(fastRules, "minVolume: 4", "minVolume: 2", 1)
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.App.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	heraldtest.Eventually(t, 10*time.Second, "the new rules in force", func() bool {
		var info incidents.RulesInfo
		r := a.Do(t, "GET", "/v1/incident-rules", nil)
		_ = json.Unmarshal(r.Body, &info)
		return info.Fingerprint == info.Configured && len(info.InForce) == 2 && info.InForce[0].MinVolume == 2
	})
	if n := len(heraldtest.Events(t, a.Bus, streams.Events, "events.incident_rules_loaded")); n != 2 {
		t.Errorf("%d rule sets in the log, want 2", n)
	}
	got := list(t, a, "?state=open").Incidents
	if len(got) != 1 || got[0].ID != open.ID {
		t.Errorf("open incidents after reload: %+v, want %s still open", got, open.ID)
	}
}

func TestAPIValidatesQueriesAndPaginates(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithConfig(fastRules), apptest.WithTargets("dispatcher", "incident"))
	for _, q := range []string{"?state=closed", "?severity=P0", "?limit=0", "?limit=x", "?cursor=nope"} {
		r := a.Do(t, "GET", "/v1/incidents"+q, nil)
		if r.Status != http.StatusBadRequest || r.JSON(t)["error"] != "invalid_query" {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	if r := a.Do(t, "GET", "/v1/incidents/inc-0000000000", nil); r.Status != http.StatusNotFound || r.JSON(t)["error"] != "not_found" {
		t.Errorf("unknown id: %d %s", r.Status, r.Body)
	}
	// Three apps failing, 10 ms apart: three incidents, listed one a page.
	// (Event times are after the projection's clock: an event stamped
	// before it counts at the clock's time.)
	now := time.Now().UTC()
	var ins []input
	for i, app := range []string{"a1", "a2", "a3"} {
		for j := range 4 {
			in := send("failed", now.Add(time.Duration(i)*10*time.Millisecond+time.Duration(j)*time.Millisecond), i*10+j)
			in.Data = json.RawMessage(strings.Replace(string(in.Data), `"shop"`, `"`+app+`"`, 1))
			ins = append(ins, in)
		}
	}
	post(t, a, ins...)
	heraldtest.Eventually(t, 10*time.Second, "three incidents", func() bool { return len(list(t, a, "").Incidents) == 3 })
	var seen []string
	cursor := ""
	for range 4 {
		p := list(t, a, "?limit=1&cursor="+cursor)
		for _, s := range p.Incidents {
			seen = append(seen, s.Group["app"])
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if !reflect.DeepEqual(seen, []string{"a3", "a2", "a1"}) {
		t.Errorf("pages gave %v, want newest first a3 a2 a1", seen)
	}
	if p := list(t, a, "?app=a2"); len(p.Incidents) != 1 || p.Incidents[0].Group["app"] != "a2" {
		t.Errorf("app filter: %+v", p.Incidents)
	}
}

func TestADeadlinePendingAcrossARestartStillFires(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithConfig(fastRules), apptest.WithTargets("dispatcher", "incident"))
	now := time.Now().UTC()
	post(t, a, provider("provider_response_received", now, 200), provider("provider_response_failed", now.Add(10*time.Millisecond), 504))
	heraldtest.Eventually(t, 5*time.Second, "caught up", func() bool { return list(t, a, "").Seq == lastSeq(t, a) })
	// Restart before the absence (1.5 s) is due; no event follows: only a
	// clock tick, published by the restarted service, can open it.
	a.Restart(t)
	heraldtest.Eventually(t, 10*time.Second, "the absence incident after the restart", func() bool {
		p := list(t, a, "?rule=provider-no-success")
		return len(p.Incidents) == 1 && p.Incidents[0].OpenedAt.Equal(now.Add(1500*time.Millisecond))
	})
}

// The projection reads every raw fact, so it is the one to surface those
// that are not valid events: each dead-lettered once, rebuild and restart
// notwithstanding, while the fold carries on.
func TestInvalidRawEventsAreDeadLetteredOnceByTheProjection(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher", "incident"), apptest.WithConfig(fastRules))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := event.New("raw", event.IntegrationCallCompleted{}).Header()
	bad.Set(event.HeaderType, "integration_call_completed")
	for _, m := range []struct {
		subject string
		header  map[string][]string
		body    string
	}{
		{"events.integration_call_completed", nil, `{"integration":"stripe"}`},
		{"events.integration_call_completed", bad, `{"integration":"stripe","statusCode":500,"latencyMs":3}`},
	} {
		msg := &nats.Msg{Subject: m.subject, Header: m.header, Data: []byte(m.body)}
		// What a producer could send: its own subject, a broken envelope.
		if _, err := a.As(t, access.Producer).JS.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	post(t, a, send("delivered", time.Now(), 1))

	reasons := func() map[string]string {
		out := map[string]string{}
		for _, m := range heraldtest.Messages(t, a.Bus.JS, streams.DLQ) {
			if m.Headers().Get(bus.HeaderDLQConsumer) == "incident" {
				out[m.Headers().Get(bus.HeaderDLQSequence)] = m.Headers().Get(bus.HeaderDLQReason)
			}
		}
		return out
	}
	// The dispatcher's start-up events come first; find the two raw ones.
	heraldtest.Eventually(t, 10*time.Second, "two dead letters", func() bool { return len(reasons()) == 2 })
	got := reasons()
	var kinds []string
	for _, r := range got {
		kinds = append(kinds, r)
	}
	if !(strings.Contains(strings.Join(kinds, ","), "envelope") && strings.Contains(strings.Join(kinds, ","), "schema")) {
		t.Errorf("reasons %v, want envelope and schema", got)
	}
	if r := a.Do(t, "POST", "/v1/incidents/rebuild", nil); r.Status != http.StatusAccepted {
		t.Fatalf("rebuild: %d %s", r.Status, r.Body)
	}
	a.Restart(t)
	post(t, a, send("delivered", time.Now(), 2))
	// The projection reads EVENTS in order and inspects each event before
	// it folds the next: once it has applied the new event it has seen the
	// two raw ones again, and a second dead letter of either would be in
	// the DLQ already.
	var newSeq uint64
	for _, e := range heraldtest.Events(t, a.Bus, streams.Events, "events.otp_delivery_completed") {
		if e.RequestID == "req-2" {
			newSeq = e.Sequence
		}
	}
	if newSeq == 0 {
		t.Fatal("the new event is not in EVENTS")
	}
	heraldtest.Eventually(t, 10*time.Second, "the projection to fold the new event", func() bool {
		r := a.Do(t, "GET", "/v1/incidents", nil)
		seq, _ := r.JSON(t)["seq"].(float64)
		return r.Status == http.StatusOK && uint64(seq) >= newSeq
	})
	if after := reasons(); !reflect.DeepEqual(after, got) {
		t.Errorf("dead letters changed after a rebuild and a restart: %v, then %v", got, after)
	}
}
