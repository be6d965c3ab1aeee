package incident

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
)

func providerOK(provider string) string {
	return fmt.Sprintf(`{"app":"shop","provider":%q,"route":"dlt","statusCode":200,"classification":"ok","attempt":1,"latencyMs":80}`, provider)
}

func providerFailed(provider string, status int, class string) string {
	return fmt.Sprintf(`{"app":"shop","provider":%q,"route":"dlt","statusCode":%d,"classification":%q,"attempt":1,"latencyMs":30000,"error":"gateway timeout"}`, provider, status, class)
}

func TestFlappingConditionIsHeldOpenByHysteresis(t *testing.T) {
	f := newFold(t, `
rules:
  - name: provider-auth
    kind: match
    match: {types: [provider_response_failed], where: ["classification = provider_auth"]}
    clear: {types: [provider_response_received]}
    groupBy: [provider]
    severities: [{level: P2}]
    resolve: {for: 10m}
`)
	// Ten refusals, each cleared by a success a minute later: one incident,
	// resolved 10 minutes after the last clear, dated at that clear.
	for i := range 10 {
		at := time.Duration(i) * 2 * time.Minute
		f.apply(ev{at, "provider_response_failed", providerFailed("twilio", 401, "provider_auth"), fmt.Sprintf("r%d", i)},
			ev{at + time.Minute, "provider_response_received", providerOK("twilio"), ""})
	}
	f.apply(tick(45 * time.Minute))
	f.expect(
		`opened provider-auth {"provider":"twilio"} P2 +0s`,
		`resolved provider-auth {"provider":"twilio"} peak=P2 +19m0s`,
	)
	if got := off(f.out[1].Time); got != "+29m0s" {
		t.Errorf("resolution decided at %s, want +29m0s", got)
	}
}

func TestAbsenceOpensAtLastSuccessPlusAnHourAndResolvesAtTheNextSuccess(t *testing.T) {
	// The seed's gateway-timeout case, on the default rules: a flaky
	// provider answering 504 between 200s is not down; one with no 200 for
	// an hour while it is being called is, from last 200 + 1 h.
	f := newFold(t, "")
	for i := range 30 { // an hour of flakiness: a 504 and a 200 every 2 min
		at := time.Duration(i) * 2 * time.Minute
		f.apply(ev{at, "provider_response_failed", providerFailed("fast2sms", 504, "transient"), ""},
			ev{at + time.Minute, "provider_response_received", providerOK("fast2sms"), ""})
	}
	f.expect() // flaky, never an hour without a 200
	last := 59 * time.Minute
	for i := range 40 { // then only 504s, every 2 minutes, for 80 minutes
		f.apply(ev{last + time.Duration(i+1)*2*time.Minute, "provider_response_failed", providerFailed("fast2sms", 504, "transient"), fmt.Sprintf("t%d", i)})
	}
	f.apply(ev{last + 85*time.Minute, "provider_response_received", providerOK("fast2sms"), ""})
	f.expect(
		`opened provider-no-success {"provider":"fast2sms"} P2 +1h59m0s`,
		`resolved provider-no-success {"provider":"fast2sms"} peak=P2 +2h24m0s`,
	)
	// Detected by the 504 stamped at the onset itself.
	if got := off(f.out[0].Time); got != "+1h59m0s" {
		t.Errorf("opened at event time %s", got)
	}
	// Evidence: the 30 failed calls since the last 200 (seq 60), the last
	// (at the onset) seq 90.
	opened := f.e.Incidents()[0].Transitions[0].Evidence
	if opened.Total != 30 || opened.FirstSeq != 60 || opened.LastSeq != 90 || len(opened.Samples) != 5 ||
		opened.Samples[4] != "t29" || opened.Window != "1h0m0s" {
		t.Errorf("evidence %+v", opened)
	}
}

func TestAbsenceNeedsActivity(t *testing.T) {
	f := newFold(t, "")
	// A provider nobody calls is not down; a first failed call after a
	// quiet day opens the incident at that call, not a day late.
	f.apply(ev{0, "provider_response_received", providerOK("twilio"), ""})
	f.apply(tick(10 * time.Hour))
	f.expect()
	f.apply(ev{10 * time.Hour, "provider_response_failed", providerFailed("twilio", 503, "transient"), ""})
	f.expect(`opened provider-no-success {"provider":"twilio"} P2 +10h0m0s`)
}

func TestUnpaid401OpensAtOnceAndResolvesOnTheNextSuccess(t *testing.T) {
	// The seed's 401 that means "subscription not paid": the adapter
	// classified it payment_required; the default rule opens at that answer
	// and resolves at the provider's next success.
	f := newFold(t, "")
	f.apply(ev{0, "provider_response_received", providerOK("acme"), ""},
		ev{time.Minute, "provider_response_failed", providerFailed("acme", 401, "payment_required"), "r-unpaid"},
		ev{2 * time.Minute, "provider_response_failed", providerFailed("acme", 401, "payment_required"), "r-unpaid-2"},
		ev{3 * time.Hour, "provider_response_received", providerOK("acme"), ""})
	f.expect(
		`opened provider-payment-required {"app":"shop","provider":"acme"} P2 +1m0s`,
		// Two hours without a 200 while called: the absence rule too.
		`opened provider-no-success {"provider":"acme"} P2 +1h0m0s`,
		`resolved provider-payment-required {"app":"shop","provider":"acme"} peak=P2 +3h0m0s`,
		`resolved provider-no-success {"provider":"acme"} peak=P2 +3h0m0s`,
	)
	// Producers' own integrations: 401 classified payment_required by the producer.
	g := newFold(t, "")
	g.apply(ev{0, "integration_call_completed", `{"integration":"stripe","operation":"charges.create","statusCode":401,"latencyMs":12,"classification":"payment_required","error":"subscription expired"}`, "r1"},
		ev{time.Hour / 2, "integration_call_completed", `{"integration":"stripe","operation":"charges.create","statusCode":200,"latencyMs":12}`, "r2"})
	g.expect(
		`opened integration-payment-required {"integration":"stripe"} P2 +0s`,
		`resolved integration-payment-required {"integration":"stripe"} peak=P2 +30m0s`,
	)
}

func TestCountOfHardFailuresOnlyOnDLTOnlyApps(t *testing.T) {
	f := newFold(t, "")
	hard := func(app, policy string) string {
		return fmt.Sprintf(`{"app":%q,"provider":"fast2sms","route":"dlt","reason":"template_rejected","classification":"template_rejected","statusCode":400,"deliveryPolicy":%q}`, app, policy)
	}
	f.apply(ev{0, "otp_dlt_hard_failure", hard("bank", "dlt_with_fallback"), ""})
	f.apply(ev{time.Minute, "otp_dlt_hard_failure", hard("gov", "dlt_only"), "g1"})
	var spike []ev
	// The 20th failure in 15 min comes at +5m36s: P1 five minutes later.
	// The window moves in 45 s steps: the count falls below 20 at +18m and
	// to zero at +21m45s, when the last failure (+6m48s) leaves it.
	for i := range 25 { // a sustained spike: 25 in 5 minutes, then nothing
		spike = append(spike, ev{2*time.Minute + time.Duration(i)*12*time.Second, "otp_dlt_hard_failure", hard("gov", "dlt_only"), ""})
	}
	f.apply(spike...)
	f.apply(tick(3 * time.Hour))
	f.expect(
		`opened otp-dlt-hard-failure {"app":"gov"} P2 +1m0s`,
		`escalated otp-dlt-hard-failure {"app":"gov"} P2->P1 +10m36s`,
		`escalated otp-dlt-hard-failure {"app":"gov"} P1->P2 +18m0s`,
		`resolved otp-dlt-hard-failure {"app":"gov"} peak=P1 +21m45s`,
	)
}

func TestInhibitionSuppressesAndRecordsAndReleases(t *testing.T) {
	f := newFold(t, `
rules:
  - name: payment
    kind: match
    match: {types: [provider_response_failed], where: ["classification = payment_required"]}
    clear: {types: [provider_response_received]}
    groupBy: [provider]
    severities: [{level: P2}]
  - name: failure-rate
    kind: ratio
    match: {types: [provider_response_failed, provider_response_received]}
    failed: {where: ["statusCode != 200"]}
    groupBy: [app, provider]
    window: 1m
    minVolume: 4
    severities: [{level: P2, above: 0.5}]
    inhibitedBy: [{rule: payment}]
`)
	f.apply(ev{0, "provider_response_failed", providerFailed("acme", 402, "payment_required"), "p1"})
	for i := range 4 {
		f.apply(ev{time.Duration(i+1) * time.Second, "provider_response_failed", providerFailed("acme", 503, "transient"), ""})
	}
	f.expect(
		`opened payment {"provider":"acme"} P2 +0s`,
		`suppressed failure-rate {"app":"shop","provider":"acme"} P2 by=payment +3s`,
	)
	payment := f.e.Incidents()[1]
	if payment.Rule != "payment" {
		payment = f.e.Incidents()[0]
	}
	if len(payment.Suppressions) != 1 || payment.Suppressions[0].Rule != "failure-rate" {
		t.Fatalf("suppressions of %s: %+v", payment.ID, payment.Suppressions)
	}
	// The payment incident resolves while the failure rate still holds:
	// the suppressed incident opens, with its own onset.
	f.out = nil
	f.apply(ev{10 * time.Second, "provider_response_failed", providerFailed("acme", 503, "transient"), ""},
		ev{11 * time.Second, "provider_response_received", providerOK("acme"), ""})
	f.expect(
		`resolved payment {"provider":"acme"} peak=P2 +11s`,
		`opened failure-rate {"app":"shop","provider":"acme"} P2 +3s`,
	)
	sup, _ := f.e.Incident(payment.Suppressions[0].IncidentID)
	if sup == nil || sup.State != event.StateOpen || sup.SuppressedBy != payment.ID || len(sup.Transitions) != 2 {
		t.Fatalf("released incident: %+v", sup)
	}
	// Its consumers see incident_opened as ordinal 0, the suppression on
	// its own subject.
	if s0, s1 := sup.Transitions[0].Subject, sup.Transitions[1].Subject; s0 != "incidents.incident_suppressed."+sup.ID+".0" ||
		s1 != "incidents.incident_opened."+sup.ID+".0" || f.out[1].Subject != s1 || f.out[1].ID != sup.ID+".0" {
		t.Errorf("subjects %s, %s; published %s %s", s0, s1, f.out[1].Subject, f.out[1].ID)
	}
}

func TestRulesAreValidatedNamingTheRuleAndField(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{`rules: [{name: r1, kind: ratio, match: {types: [otp_delivery_completed]}, failed: {where: ["status = failed"]}, groupBy: [ap], window: 5m, severities: [{level: P1, above: 0.5}]}]`,
			`rule r1: groupBy[0]: "ap" is not a field of otp_delivery_completed`},
		{`rules: [{name: r2, kind: ratio, match: {types: [otp_delivery_completed]}, failed: {where: ["status => failed"]}, window: 5m, severities: [{level: P1, above: 0.5}]}]`,
			`rule r2: failed.where[0]: "status => failed": unknown operator "=>"`},
		{`rules: [{name: r3, kind: count, match: {types: [otp_sent]}, window: 5m, severities: [{level: P1, atLeast: 1}]}]`,
			`rule r3: match.types[0]: unknown event type "otp_sent"`},
		{`rules: [{name: r4, kind: absence, match: {types: [provider_response_received]}, activity: {types: [provider_response_failed]}, severities: [{level: P4, after: 1h}]}]`,
			`rule r4: severities[0].level: "P4" is not P1, P2 or P3`},
		{`rules: [{name: r5, kind: ratio, match: {types: [otp_delivery_completed]}, failed: {where: ["status >= failed"]}, window: 5m, severities: [{level: P1, above: 0.5}]}]`,
			`rule r5: failed.where[0]: "status >= failed": >= compares numbers`},
		{`rules: [{name: r6, kind: ratio, match: {types: [otp_delivery_completed]}, failed: {where: ["status = failed"]}, window: 5m, severities: [{level: P1, above: 0.1}, {level: P2, above: 0.5}]}]`,
			`rule r6: severities: P1 must be at least as hard to reach as P2`},
		{`rules: [{name: r7, kind: match, match: {types: [provider_response_failed]}, severities: [{level: P2}], inhibitedBy: [{rule: nope}]}]`,
			`rule r7: inhibitedBy[0].rule: no rule named "nope"`},
		{`rules: [{name: r8, kind: count, match: {types: [otp_dlt_hard_failure]}, window: 7m, resolution: 2m, severities: [{level: P2, atLeast: 1}]}]`,
			`rule r8: resolution: 2m0s must be at least 1s and divide the window 7m0s`},
		{"rules:\n  - name: r9\n    kind: count\n    windw: 5m\n", `line 4: field windw not found`},
		{`rules: [{name: r10, kind: ratio, match: {types: [otp_delivery_completed]}, failed: {where: ["status = faild"]}, window: 5m, severities: [{level: P1, above: 0.5}]}]`,
			`rule r10: failed.where[0]: otp_delivery_completed.status is never "faild" (values: delivered, failed)`},
		{`rules: [{name: Bad Name, kind: count}]`, `rule Bad Name: name: "Bad Name" must be lower-case`},
	}
	cat := catalog(t)
	for _, tc := range tests {
		_, err := ParseRules("rules.yaml", []byte(tc.yaml), cat)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, config.ErrInvalid) {
			t.Errorf("%s:\n got %v\nwant …%s…", tc.yaml, err, tc.want)
		}
	}
}

func TestPredicates(t *testing.T) {
	data := []byte(`{"app":"shop","status":"failed","statusCode":503,"nested":{"status":"ok"},"classification":"pay\u006dent_required","latencyMs":12.5,"ok":true}`)
	tests := []struct {
		pred string
		want bool
	}{
		{"status = failed", true}, {"status == 'failed'", true}, {"status != failed", false},
		{"statusCode >= 500", true}, {"statusCode < 500", false}, {"statusCode = 503", true},
		{"statusCode in [500, 502, 503]", true}, {"statusCode not in (500, 502)", true},
		{"classification in [payment_required, provider_auth]", true}, {"latencyMs > 12", true},
		{"latencyMs <= 12", false}, {"ok = true", true}, {"missing = ''", true}, {"missing >= 0", false},
		{`app in ["shop", "bank"]`, true},
	}
	for _, tc := range tests {
		p, err := parsePred(tc.pred)
		if err != nil {
			t.Fatalf("%s: %v", tc.pred, err)
		}
		vals := make([]value, 1)
		extract(data, []string{p.field}, vals)
		if got := p.eval(&vals[0]); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.pred, got, tc.want)
		}
	}
}

func TestASuccessAtTheVeryOnsetOpensNothing(t *testing.T) {
	f := newFold(t, "")
	f.apply(ev{0, "provider_response_received", providerOK("twilio"), ""},
		ev{time.Minute, "provider_response_failed", providerFailed("twilio", 504, "transient"), ""},
		ev{time.Hour, "provider_response_received", providerOK("twilio"), ""})
	f.apply(tick(3 * time.Hour))
	f.expect()
}

func TestEventsWhoseRuleFieldsBreakTheSchemaOnlyMoveTheClock(t *testing.T) {
	cat := catalog(t)
	rules, err := DefaultRules(cat)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Options{Catalog: cat, Rules: rules})
	bad := []string{
		`{"app":"shop","attempts":1,"latencyMs":1}`,                 // status missing
		`{"app":"shop","status":503,"attempts":1,"latencyMs":1}`,    // status not a string
		`{"app":null,"status":"failed","attempts":1,"latencyMs":1}`, // app null
		`not json at all`, // not an object
		`{"app":"shop","status":"failed","attempts":1,"latencyMs":1`, // truncated: still read, fields intact
	}
	for i, d := range bad {
		for j := range 20 {
			e.Apply(&Record{Seq: uint64(i*20 + j + 1), Time: t0.Add(time.Duration(i*20+j) * time.Second).UnixNano(), Type: "otp_delivery_completed", ID: "x", Data: []byte(d)})
		}
	}
	if got := e.Invalid(); got != 80 {
		t.Errorf("%d events refused, want 80", got)
	}
	if got := e.Now(); !got.Equal(t0.Add(99 * time.Second)) {
		t.Errorf("clock at %s", got)
	}
	// The truncated document still carries well-typed fields: it counts.
	if n := len(e.Incidents()); n != 1 {
		t.Errorf("%d incidents, want the one from the readable events", n)
	}
}

func TestMatchEvidenceCarriesTheClassificationAndItsReason(t *testing.T) {
	f := newFold(t, "")
	f.apply(ev{0, "integration_call_completed", `{"integration":"stripe","operation":"charges.create","statusCode":401,"latencyMs":12,"classification":"payment_required","classificationReason":"Stripe refuses the account's API keys (401)"}`, "r1"},
		ev{time.Minute, "integration_call_completed", `{"integration":"stripe","operation":"charges.create","statusCode":200,"latencyMs":12}`, "r2"},
		ev{2 * time.Minute, "provider_response_failed", providerFailed("acme", 401, "payment_required"), "r3"})
	opened := f.out[0].Data.(event.IncidentOpened).Evidence
	if opened.Classification != "payment_required" || opened.Reason != "Stripe refuses the account's API keys (401)" || opened.Window != "" {
		t.Errorf("opening evidence %+v", opened)
	}
	// Cleared: nothing matched, nothing classified.
	if resolved := f.out[1].Data.(event.IncidentResolved).Evidence; resolved.Classification != "" || resolved.Total != 0 {
		t.Errorf("resolving evidence %+v", resolved)
	}
	// A provider's classification has no reason field: the classification alone.
	if p := f.out[2].Data.(event.IncidentOpened).Evidence; p.Classification != "payment_required" || p.Reason != "" {
		t.Errorf("provider evidence %+v", p)
	}
}
