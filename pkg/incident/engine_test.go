package incident

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// t0 is the fixtures' origin; every event time is explicit.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// ev is one fixture event: when, what type, its data, its request id.
type ev struct {
	at   time.Duration
	typ  string
	data string
	req  string
}

// fold runs fixture events through an engine and returns the transitions.
type fold struct {
	t   *testing.T
	e   *Engine
	seq uint64
	out []*event.Event
	cat *event.Catalog
}

func newFold(t *testing.T, rulesYAML string) *fold {
	t.Helper()
	cat := catalog(t)
	var rs *Rules
	var err error
	if rulesYAML == "" {
		rs, err = DefaultRules(cat)
	} else {
		rs, err = ParseRules("test", []byte(rulesYAML), cat)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &fold{t: t, e: NewEngine(Options{Catalog: cat, Rules: rs}), cat: cat}
}

var testCatalog *event.Catalog

func catalog(t testing.TB) *event.Catalog {
	if testCatalog == nil {
		c, err := event.NewCatalog()
		if err != nil {
			t.Fatal(err)
		}
		testCatalog = c
	}
	return testCatalog
}

func (f *fold) apply(evs ...ev) *fold {
	f.t.Helper()
	for _, x := range evs {
		f.seq++
		if err := f.cat.Validate(event.Type(x.typ), []byte(x.data)); err != nil {
			f.t.Fatalf("fixture %d: %v", f.seq, err)
		}
		f.e.Apply(&Record{Seq: f.seq, Time: t0.Add(x.at).UnixNano(), Type: x.typ, ID: fmt.Sprintf("ev-%d", f.seq), RequestID: x.req, Data: []byte(x.data)})
		f.out = append(f.out, f.e.Drain()...)
	}
	return f
}

func (f *fold) until(d time.Duration) *fold {
	f.e.AdvanceTo(t0.Add(d).UnixNano())
	f.out = append(f.out, f.e.Drain()...)
	return f
}

// tick is a clock_tick record, as the live projection publishes.
func tick(at time.Duration) ev {
	return ev{at: at, typ: "clock_tick", data: fmt.Sprintf(`{"projection":"incidents","deadline":%q}`, t0.Add(at).Format(time.RFC3339Nano))}
}

// line renders a transition for exact comparison.
func line(e *event.Event) string {
	switch d := e.Data.(type) {
	case event.IncidentOpened:
		return fmt.Sprintf("opened %s %s %s %s", d.Rule, groupText(d.Group), d.Severity, off(d.OpenedAt))
	case event.IncidentEscalated:
		return fmt.Sprintf("escalated %s %s %s->%s %s", d.Rule, groupText(d.Group), d.From, d.To, off(d.At))
	case event.IncidentResolved:
		return fmt.Sprintf("resolved %s %s peak=%s %s", d.Rule, groupText(d.Group), d.PeakSeverity, off(d.ResolvedAt))
	case event.IncidentSuppressed:
		return fmt.Sprintf("suppressed %s %s %s by=%s %s", d.Rule, groupText(d.Group), d.Severity, d.SuppressedByRule, off(d.At))
	}
	return string(e.Type)
}

func groupText(g map[string]string) string {
	b, _ := json.Marshal(g)
	return string(b)
}

func off(t time.Time) string { return "+" + t.Sub(t0).String() }

func (f *fold) expect(want ...string) {
	f.t.Helper()
	var got []string
	for _, e := range f.out {
		got = append(got, line(e))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		f.t.Errorf("transitions:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func delivered(app string) string {
	return fmt.Sprintf(`{"app":%q,"status":"delivered","attempts":1,"latencyMs":120}`, app)
}

func failed(app string) string {
	return fmt.Sprintf(`{"app":%q,"status":"failed","attempts":3,"latencyMs":900,"reason":"provider_error"}`, app)
}

// sends returns n otp_delivery_completed events spread over one minute
// starting at `at`, `bad` of them failed.
func sends(at time.Duration, n, bad int, app string) []ev {
	var out []ev
	for i := range n {
		d := delivered(app)
		if i < bad {
			d = failed(app)
		}
		out = append(out, ev{at: at + time.Duration(i)*time.Minute/time.Duration(n), typ: "otp_delivery_completed", data: d, req: fmt.Sprintf("req-%s-%d", at, i)})
	}
	return out
}

const ratioRules = `
rules:
  - name: otp-failure-rate
    kind: ratio
    match: {types: [otp_delivery_completed]}
    failed: {where: ["status = failed"]}
    groupBy: [app]
    window: 1m
    resolution: 5s
    minVolume: 10
    severities:
      - {level: P1, above: 0.5, for: 2m}
      - {level: P2, atLeast: 0.1, for: 1m}
      - {level: P3, above: 0}
    resolve: {for: 2m}
`

func TestRatioBelowMinimumVolumeOpensNothing(t *testing.T) {
	f := newFold(t, ratioRules)
	// 1 failure out of 2 is not "50 %", nor 9 out of 9.
	f.apply(ev{0, "otp_delivery_completed", failed("shop"), "r1"}, ev{time.Second, "otp_delivery_completed", delivered("shop"), "r2"})
	f.apply(sends(10*time.Minute, 9, 9, "shop")...)
	f.until(time.Hour)
	f.expect()
	if n := len(f.e.Incidents()); n != 0 {
		t.Errorf("%d incidents", n)
	}
}

func TestRatioEscalatesP3ToP1AndBackInOneIncident(t *testing.T) {
	f := newFold(t, ratioRules)
	var evs []ev
	// Twenty sends a minute, one every 3 s, the failures first, in a 1 min
	// window of 5 s steps. Minute 0 has 1 failure: P3 once the window holds
	// 10 sends (+27s). Minutes 1–2 have 3: the ratio reaches 10 % at +1m03s
	// and stays there (the failures of one minute leave the window as those
	// of the next arrive), so P2 holds its minute at +2m03s. Minutes 3–6
	// have 15 (75 %): above 50 % from +3m30s, P1 after its 2 min at +5m30s.
	// Minutes 7–8 have 3 again: below 50 % from +7m20s, P1 is left after
	// the 2 min of resolve hysteresis (+9m20s), dated +7m20s. From minute 9
	// no failure: below 10 % from +9m, none in the window from +9m05s.
	evs = append(evs, sends(0, 20, 1, "shop")...)
	for m := 1; m <= 2; m++ {
		evs = append(evs, sends(time.Duration(m)*time.Minute, 20, 3, "shop")...)
	}
	for m := 3; m <= 6; m++ {
		evs = append(evs, sends(time.Duration(m)*time.Minute, 20, 15, "shop")...)
	}
	for m := 7; m <= 8; m++ {
		evs = append(evs, sends(time.Duration(m)*time.Minute, 20, 3, "shop")...)
	}
	for m := 9; m <= 20; m++ {
		evs = append(evs, sends(time.Duration(m)*time.Minute, 20, 0, "shop")...)
	}
	f.apply(evs...)
	f.expect(
		`opened otp-failure-rate {"app":"shop"} P3 +27s`,
		`escalated otp-failure-rate {"app":"shop"} P3->P2 +2m3s`,
		`escalated otp-failure-rate {"app":"shop"} P2->P1 +5m30s`,
		`escalated otp-failure-rate {"app":"shop"} P1->P2 +7m20s`,
		`escalated otp-failure-rate {"app":"shop"} P2->P3 +9m0s`,
		`resolved otp-failure-rate {"app":"shop"} peak=P1 +9m5s`,
	)
	incs := f.e.Incidents()
	if len(incs) != 1 {
		t.Fatalf("%d incidents, want 1", len(incs))
	}
	inc := incs[0]
	if inc.State != event.StateResolved || inc.PeakSeverity != "P1" || len(inc.Transitions) != 6 {
		t.Errorf("incident %+v", inc)
	}
	// Times are the transitions' own; the events are stamped when they
	// were known: P1 was left at +7m20s, known after 2 min of hysteresis.
	if got := off(f.out[3].Time); got != "+9m20s" {
		t.Errorf("de-escalation decided at %s, want +9m20s", got)
	}
	// A de-escalation and the resolution are dated when their threshold
	// stopped holding, and show what was counted then: the last event
	// counted is no later than that time, and the ratio is below the
	// severity left (50 % for P1, 10 % for P2, any failure for P3).
	for i, limit := range map[int]float64{3: .5, 4: .1, 5: 0} {
		var at time.Time
		var evd event.Evidence
		switch d := f.out[i].Data.(type) {
		case event.IncidentEscalated:
			at, evd = d.At, d.Evidence
		case event.IncidentResolved:
			at, evd = d.ResolvedAt, d.Evidence
		}
		if last := t0.Add(evs[evd.LastSeq-1].at); last.After(at) || evd.Ratio > limit || evd.Total == 0 {
			t.Errorf("transition %d at %s: evidence %d/%d (last counted at %s)", i, off(at), evd.Failed, evd.Total, off(last))
		}
	}
	// Every transition of one incident carries the same id.
	for _, e := range f.out {
		if !strings.HasPrefix(e.ID, inc.ID+".") || !strings.HasPrefix(e.Subject, "incidents."+string(e.Type)+"."+inc.ID+".") {
			t.Errorf("transition %s on %s does not belong to %s", e.ID, e.Subject, inc.ID)
		}
	}
}
