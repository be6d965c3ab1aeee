package incident

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

const flapRules = `
rules:
  - name: provider-auth
    kind: match
    summary: "{provider}: {failed} refusal(s)"
    match: {types: [provider_response_failed], where: ["classification = provider_auth"]}
    clear: {types: [provider_response_received]}
    groupBy: [provider]
    severities:
      - {level: P1, atLeast: 3}
      - {level: P2}
    flap: {maxCycles: 2, window: 10m}
`

// refusals returns n refusals of twilio at `at`, a second apart, and a
// success a minute later that clears them.
func refusals(at time.Duration, n int) []ev {
	var out []ev
	for i := range n {
		out = append(out, ev{at + time.Duration(i)*time.Second, "provider_response_failed", providerFailed("twilio", 401, "provider_auth"), fmt.Sprintf("r-%s-%d", at, i)})
	}
	return append(out, ev{at + time.Minute, "provider_response_received", providerOK("twilio"), ""})
}

// flapLog: two ordinary cycles (+0, +2m), a third that flaps (+4m), the
// condition back at P2 (+6m, nothing said) and at P1 (+8m, an escalation),
// quiet from +9m; resolved at +19m dated +9m; then a fresh incident.
func flapLog() []ev {
	var log []ev
	log = append(log, refusals(0, 1)...)
	log = append(log, refusals(2*time.Minute, 1)...)
	log = append(log, refusals(4*time.Minute, 1)...)
	log = append(log, refusals(6*time.Minute, 1)...)
	log = append(log, refusals(8*time.Minute, 3)...)
	log = append(log, tick(18*time.Minute), tick(19*time.Minute))
	return append(log, refusals(30*time.Minute, 1)...)
}

func flapLine(e *event.Event) string {
	if d, ok := e.Data.(event.IncidentEscalated); ok && d.Flapping != nil {
		return fmt.Sprintf("%s flapping(%d in %s) %q", line(e), d.Flapping.Cycles, d.Flapping.Window, d.Summary)
	}
	return line(e)
}

func TestFlapControlHoldsACyclingIncidentOpenUntilQuietForTheWindow(t *testing.T) {
	f := newFold(t, flapRules)
	f.apply(flapLog()...)
	var got []string
	for _, e := range f.out {
		got = append(got, flapLine(e))
	}
	want := []string{
		`opened provider-auth {"provider":"twilio"} P2 +0s`,
		`resolved provider-auth {"provider":"twilio"} peak=P2 +1m0s`,
		`opened provider-auth {"provider":"twilio"} P2 +2m0s`,
		`resolved provider-auth {"provider":"twilio"} peak=P2 +3m0s`,
		`opened provider-auth {"provider":"twilio"} P2 +4m0s`,
		// Two cycles within 10 min already: the third resolution is held.
		`escalated provider-auth {"provider":"twilio"} P2->P2 +5m0s flapping(2 in 10m0s) "twilio: 0 refusal(s)"`,
		`escalated provider-auth {"provider":"twilio"} P2->P1 +8m2s flapping(2 in 10m0s) "twilio: 3 refusal(s)"`,
		// Clear from +9m; 10 min quiet at +19m.
		`resolved provider-auth {"provider":"twilio"} peak=P1 +9m0s`,
		`opened provider-auth {"provider":"twilio"} P2 +30m0s`,
		`resolved provider-auth {"provider":"twilio"} peak=P2 +31m0s`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("transitions:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := off(f.out[7].Time); got != "+19m0s" {
		t.Errorf("flapping incident's resolution decided at %s, want +19m0s", got)
	}
	held := f.out[4].Data.(event.IncidentOpened).IncidentID
	inc, _ := f.e.Incident(held)
	var types []string
	for _, tr := range inc.Transitions {
		types = append(types, fmt.Sprintf("%s:%s:%v", tr.Type, tr.Severity, tr.Flapping))
	}
	if want := "incident_opened:P2:false incident_escalated:P2:true incident_escalated:P1:true incident_resolved:P1:false"; strings.Join(types, " ") != want {
		t.Errorf("held incident's history %s, want %s", strings.Join(types, " "), want)
	}
	// Consumers of INCIDENTS rebuild the same incidents.
	pub := FoldPublished(f.out)
	for _, p := range pub {
		if p.ID == held && (p.State != event.StateResolved || p.Summary != inc.Summary || len(p.Transitions) != 4 || !p.Transitions[1].Flapping) {
			t.Errorf("published fold: %+v", p)
		}
	}
}

func TestFlappingIncidentStateAndSnapshots(t *testing.T) {
	log := flapLog()
	// While held: flapping, open to inhibition and to the API as such.
	f := newFold(t, flapRules)
	f.apply(log[:9]...) // up to the refusal at +6m
	var flapping int
	for _, inc := range f.e.Incidents() {
		if inc.State == event.StateFlapping {
			flapping++
		}
	}
	if flapping != 1 {
		t.Errorf("%d flapping incidents, want 1", flapping)
	}
	// A snapshot after every event gives the same transitions (the rules
	// in the log, as live: a snapshot keeps those).
	rs, err := ParseRules("test", []byte(flapRules), f.cat)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(event.IncidentRulesLoaded{Fingerprint: rs.Fingerprint, Source: rs.Source, Rules: rs.Names(), Document: rs.Document})
	log = append([]ev{{typ: "incident_rules_loaded", data: string(b)}}, log...)
	fromLog := func() *fold { return &fold{t: t, e: NewEngine(Options{Catalog: f.cat}), cat: f.cat} }
	want := outputs(fromLog().apply(log...).out)
	if len(want) != 10 {
		t.Fatalf("%d transitions from the log, want 10", len(want))
	}
	g := fromLog()
	for _, x := range log {
		g.apply(x)
		b, err := g.e.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if g.e, err = ReadSnapshot(bytes.NewReader(b), Options{Catalog: g.cat}); err != nil {
			t.Fatal(err)
		}
	}
	if got := outputs(g.out); !reflect.DeepEqual(got, want) {
		t.Errorf("through snapshots: first difference:\n%s", firstDiff(got, want))
	}
}

func TestFlapControlIsOffWithoutItAndForgetsOldCycles(t *testing.T) {
	// Without flap: three cycles, three incidents.
	f := newFold(t, strings.Replace(flapRules, "    flap: {maxCycles: 2, window: 10m}\n", "", 1))
	f.apply(refusals(0, 1)...).apply(refusals(2*time.Minute, 1)...).apply(refusals(4*time.Minute, 1)...)
	if n := len(f.e.Incidents()); n != 3 || len(f.out) != 6 {
		t.Errorf("without flap control: %d incidents, %d transitions", n, len(f.out))
	}
	// Cycles older than the window do not count: one every 6 min never flaps.
	g := newFold(t, flapRules)
	for i := range 5 {
		g.apply(refusals(time.Duration(i)*6*time.Minute, 1)...)
	}
	for _, inc := range g.e.Incidents() {
		if inc.State != event.StateResolved || len(inc.Transitions) != 2 {
			t.Errorf("incident %s: %s, %d transitions", inc.ID, inc.State, len(inc.Transitions))
		}
	}
}

func TestFlapSettingsAreValidated(t *testing.T) {
	for _, tc := range []struct{ flap, field string }{
		{"{maxCycles: 0, window: 10m}", "flap.maxCycles"},
		{"{maxCycles: 2}", "flap.window"},
	} {
		_, err := ParseRules("test", []byte(strings.Replace(flapRules, "{maxCycles: 2, window: 10m}", tc.flap, 1)), catalog(t))
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("flap %s: error %v, want one naming %s", tc.flap, err, tc.field)
		}
	}
}
