package incident

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// mixedLog is a pseudo-random but fixed log touching every default rule.
func mixedLog(n int) []ev {
	r := rand.New(rand.NewPCG(1, 2))
	var out []ev
	at := time.Duration(0)
	for i := range n {
		at += time.Duration(r.IntN(4000)) * time.Millisecond
		app := []string{"shop", "bank", "gov"}[r.IntN(3)]
		prov := []string{"fast2sms", "twilio"}[r.IntN(2)]
		phase := (i / 400) % 3 // calm, failing, unpaid
		switch k := r.IntN(6); {
		case k < 3:
			d := delivered(app)
			if phase == 1 && r.IntN(3) > 0 || r.IntN(30) == 0 {
				d = failed(app)
			}
			out = append(out, ev{at, "otp_delivery_completed", d, fmt.Sprintf("r%d", i)})
		case k == 3:
			if phase == 2 {
				out = append(out, ev{at, "provider_response_failed", providerFailed(prov, 401, "payment_required"), fmt.Sprintf("r%d", i)})
			} else if phase == 1 {
				out = append(out, ev{at, "provider_response_failed", providerFailed(prov, 504, "transient"), fmt.Sprintf("r%d", i)})
			} else {
				out = append(out, ev{at, "provider_response_received", providerOK(prov), ""})
			}
		case k == 4:
			out = append(out, ev{at, "otp_dlt_hard_failure", fmt.Sprintf(`{"app":%q,"provider":%q,"route":"dlt","reason":"provider_error","deliveryPolicy":"dlt_only"}`, app, prov), ""})
		case phase == 2 && r.IntN(2) == 0:
			// Unpaid by turns: the payment incident flaps.
			out = append(out, ev{at, "integration_call_completed", `{"integration":"stripe","operation":"charges.create","statusCode":401,"latencyMs":10,"classification":"payment_required","classificationReason":"unpaid"}`, ""})
		default:
			code := 200
			if phase == 1 {
				code = 503
			}
			out = append(out, ev{at, "integration_call_completed", fmt.Sprintf(`{"integration":"stripe","operation":"charges.create","statusCode":%d,"latencyMs":10}`, code), ""})
		}
		if i%97 == 0 {
			out = append(out, tick(at+time.Duration(r.IntN(3))*time.Hour))
		}
	}
	return out
}

func outputs(evs []*event.Event) []string {
	var s []string
	for _, e := range evs {
		b, _ := json.Marshal(e.Data)
		s = append(s, fmt.Sprintf("%s %s %s %s %s", e.ID, e.Subject, e.Time.Format(time.RFC3339Nano), e.CausationID, b))
	}
	return s
}

// TestSameLogSameIncidentsThroughSnapshotsAndRuleReloads is long on
// purpose: one log with a rule reload midway (most of the length is the
// rule set it reloads), folded whole and again through snapshots.
func TestSameLogSameIncidentsThroughSnapshotsAndRuleReloads(t *testing.T) {
	cat := catalog(t)
	rules, err := DefaultRules(cat)
	if err != nil {
		t.Fatal(err)
	}
	loaded := func(rs *Rules) ev {
		b, _ := json.Marshal(event.IncidentRulesLoaded{Fingerprint: rs.Fingerprint, Source: rs.Source, Rules: rs.Names(), Document: rs.Document})
		return ev{typ: "incident_rules_loaded", data: string(b)}
	}
	// The log carries the rules in force, and a reload midway that tightens
	// a rule and drops another.
	changed, err := ParseRules("reloaded", []byte(`
rules:
  - name: otp-failure-rate
    kind: ratio
    match: {types: [otp_delivery_completed]}
    failed: {where: ["status = failed"]}
    groupBy: [app]
    window: 5m
    resolution: 15s
    minVolume: 5
    severities:
      - {level: P1, above: 0.4, for: 2m}
      - {level: P3, above: 0}
    resolve: {for: 5m}
  - name: provider-no-success
    kind: absence
    match: {types: [provider_response_received]}
    activity: {types: [provider_response_failed]}
    groupBy: [provider]
    severities: [{level: P2, after: 30m}]
`), cat)
	if err != nil {
		t.Fatal(err)
	}
	log := append([]ev{loaded(rules)}, mixedLog(3000)...)
	mid := log[1500].at
	r2 := loaded(changed)
	r2.at = mid
	log = append(log[:1500], append([]ev{r2}, log[1500:]...)...)

	run := func(snapshotEvery int) ([]string, []*Incident) {
		f := &fold{t: t, e: NewEngine(Options{Catalog: cat}), cat: cat}
		for i, x := range log {
			f.apply(x)
			if snapshotEvery > 0 && i%snapshotEvery == snapshotEvery-1 {
				b, err := f.e.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				if f.e, err = ReadSnapshot(bytes.NewReader(b), Options{Catalog: cat}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return outputs(f.out), f.e.Incidents()
	}
	want, wantIncs := run(0)
	t.Logf("%d transitions", len(want))
	if len(want) < 10 {
		t.Fatalf("the log produced only %d transitions", len(want))
	}
	if !strings.Contains(strings.Join(want, "\n"), `"flapping":`) {
		t.Error("no incident flapped: the log no longer covers flap control")
	}
	for _, every := range []int{29, 500} {
		got, incs := run(every)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("snapshot every %d: %d transitions, want %d; first difference:\n%s", every, len(got), len(want), firstDiff(got, want))
		}
		a, _ := json.Marshal(incs)
		b, _ := json.Marshal(wantIncs)
		if string(a) != string(b) {
			t.Errorf("snapshot every %d: incidents differ", every)
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf(" got  %s\n want %s", a[i], b[i])
		}
	}
	return "(one is a prefix of the other)"
}

func TestReloadKeepsIncidentsAcrossRuleChanges(t *testing.T) {
	cat := catalog(t)
	loaded := func(doc string) ev {
		rs, err := ParseRules("test", []byte(doc), cat)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(event.IncidentRulesLoaded{Fingerprint: rs.Fingerprint, Source: rs.Source, Rules: rs.Names(), Document: rs.Document})
		return ev{typ: "incident_rules_loaded", data: string(b)}
	}
	rule := func(min int, levels string) string {
		return fmt.Sprintf(`
rules:
  - name: otp-failure-rate
    kind: ratio
    match: {types: [otp_delivery_completed]}
    failed: {where: ["status = failed"]}
    groupBy: [app]
    window: 1m
    resolution: 5s
    minVolume: %d
    severities: [%s]
`, min, levels)
	}
	f := &fold{t: t, e: NewEngine(Options{Catalog: cat}), cat: cat}
	r1 := loaded(rule(4, "{level: P1, above: 0.5}, {level: P3, above: 0}"))
	f.apply(r1)
	f.apply(sends(0, 8, 8, "shop")[:4]...) // all failing, 7.5 s apart: P1 at the 4th
	// Same window, another minimum volume: the incident goes on.
	r2 := loaded(rule(2, "{level: P1, above: 0.5}, {level: P3, above: 0}"))
	r2.at = 30 * time.Second
	f.apply(r2)
	// P1 removed: the incident steps down to P3 at the reload.
	r3 := loaded(rule(2, "{level: P3, above: 0}"))
	r3.at = 40 * time.Second
	f.apply(r3)
	// The rule removed: its incident resolves at the reload.
	r4 := loaded(`
rules:
  - name: other
    kind: count
    match: {types: [otp_dlt_hard_failure]}
    window: 5m
    severities: [{level: P2, atLeast: 1}]
`)
	r4.at = 50 * time.Second
	f.apply(r4)
	f.expect(
		`opened otp-failure-rate {"app":"shop"} P1 +22.5s`,
		`escalated otp-failure-rate {"app":"shop"} P1->P3 +40s`,
		`resolved otp-failure-rate {"app":"shop"} peak=P1 +50s`,
	)
	if len(f.e.Incidents()) != 1 {
		t.Errorf("%d incidents, want 1 across the reloads", len(f.e.Incidents()))
	}
}
