package notifier

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/pkg/slack"
)

func TestMessagesStayWithinSlackLimits(t *testing.T) {
	group := map[string]string{}
	for i := range 60 {
		group[fmt.Sprintf("key%02d", i)] = strings.Repeat("v", 200)
	}
	samples := make([]string, 20)
	for i := range samples {
		samples[i] = strings.Repeat("r", 100)
	}
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := Snapshot{IncidentID: "inc-0123456789abcdef", Rule: strings.Repeat("rule-", 40), Kind: "ratio",
		Summary: strings.Repeat("ünïcødé summary ", 500), Runbook: "https://herald.dev/runbooks/x", Group: group,
		Severity: "P1", Peak: "P1", State: event.StateOpen, OpenedAt: at, At: at, From: "P2", To: "P1",
		Evidence: event.Evidence{Failed: 1, Total: 2, Ratio: .5, Window: "5m0s", Samples: samples, FirstSeq: 1, LastSeq: 2}}
	for name, blocks := range map[string][]slack.Block{"root": RootBlocks(s), "reply": ReplyBlocks(s, true)} {
		if len(blocks) > slack.MaxBlocks {
			t.Errorf("%s: %d blocks", name, len(blocks))
		}
		for _, b := range blocks {
			if b.Text != nil {
				limit := slack.MaxSectionText
				if b.Type == "header" {
					limit = slack.MaxHeaderText
				}
				if n := utf8.RuneCountInString(b.Text.Text); n > limit {
					t.Errorf("%s: %s text of %d characters", name, b.Type, n)
				}
			}
			if len(b.Fields) > slack.MaxFields {
				t.Errorf("%s: %d fields", name, len(b.Fields))
			}
			for _, f := range b.Fields {
				if n := utf8.RuneCountInString(f.Text); n > slack.MaxFieldText {
					t.Errorf("%s: field of %d characters", name, n)
				}
			}
		}
	}
	if n := utf8.RuneCountInString(Fallback(StepRoot, s)); n > slack.MaxFallbackText {
		t.Errorf("fallback of %d characters", n)
	}
	if !utf8.ValidString(RootBlocks(s)[1].Text.Text) {
		t.Error("truncation split a character")
	}
	many := make([]slack.Block, 80)
	for i := range many {
		many[i] = slack.Block{Type: "divider"}
	}
	if got := slack.Limit(many); len(got) != slack.MaxBlocks || got[len(got)-1].Type != "context" {
		t.Errorf("Limit kept %d blocks", len(got))
	}
}

func TestSummaryMarkupIsEscaped(t *testing.T) {
	s := Snapshot{IncidentID: "inc-0123456789abcdef", Rule: "r", Summary: "<!channel> & <http://evil|click>", State: event.StateOpen,
		Severity: "P2", Group: map[string]string{"app": "a"}}
	if got := RootBlocks(s)[1].Text.Text; strings.Contains(got, "<!channel>") || !strings.Contains(got, "&lt;!channel&gt; &amp;") {
		t.Errorf("summary rendered as %q", got)
	}
}

// text is everything a message says: its blocks' texts and fields.
func text(blocks []slack.Block) string {
	var b strings.Builder
	for _, bl := range blocks {
		if bl.Text != nil {
			b.WriteString(bl.Text.Text + "\n")
		}
		for _, f := range bl.Fields {
			b.WriteString(f.Text + "\n")
		}
		for _, el := range bl.Elements {
			b.WriteString(el.Text + "\n")
		}
	}
	return b.String()
}

// fold applies incident transitions (subjects on the incidents.<type>.<id>.<n>
// convention) and returns the latest snapshot.
func fold(t *testing.T, ds ...event.Data) Snapshot {
	t.Helper()
	s := NewState()
	var id string
	for i, d := range ds {
		e := event.New("incident", d, event.WithSubject(fmt.Sprintf("incidents.%s.inc-0123456789abcdef.%d", d.EventType(), i)))
		if s.Apply(e) == nil {
			t.Fatalf("transition %d not folded", i)
		}
		id = "inc-0123456789abcdef"
	}
	return s.Timelines[id].Latest().Snapshot
}

func TestRootAndResolvedTextsShowTheLatestEvidence(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	g := map[string]string{"app": "shop"}
	open := event.IncidentOpened{IncidentID: "inc-0123456789abcdef", Rule: "otp-failure-rate", Kind: "ratio", Severity: "P3", Group: g,
		OpenedAt: at, Summary: "shop: 3% of OTP sends failing (1/31 in 5m0s)", Evidence: event.Evidence{Failed: 1, Total: 31, Ratio: 1. / 31, Window: "5m0s"}}
	up := event.IncidentEscalated{IncidentID: open.IncidentID, Rule: open.Rule, Group: g, From: "P3", To: "P1", At: at.Add(6 * time.Minute),
		Summary: "shop: 100% of OTP sends failing (28/28 in 5m0s)", Evidence: event.Evidence{Failed: 28, Total: 28, Ratio: 1, Window: "5m0s"}}
	done := event.IncidentResolved{IncidentID: open.IncidentID, Rule: open.Rule, Group: g, OpenedAt: at, ResolvedAt: at.Add(20 * time.Minute),
		PeakSeverity: "P1", Summary: "shop: 0% of OTP sends failing (0/40 in 5m0s)", Evidence: event.Evidence{Total: 40, Window: "5m0s"}}
	for _, tc := range []struct {
		name      string
		ds        []event.Data
		want, not string
	}{
		{"at P1", []event.Data{open, up}, "100% of OTP sends failing (28/28", "1/31"},
		{"resolved", []event.Data{open, up, done}, "0% of OTP sends failing (0/40", "28/28"},
	} {
		s := fold(t, tc.ds...)
		for name, got := range map[string]string{"root": text(RootBlocks(s)), "fallback": Fallback(StepRoot, s)} {
			if !strings.Contains(got, tc.want) || strings.Contains(got, tc.not) {
				t.Errorf("%s %s: %q, want %q and not %q", tc.name, name, got, tc.want, tc.not)
			}
		}
	}
	// An escalation of an older version carries no summary: the root keeps the one it had.
	old := up
	old.Summary = ""
	if s := fold(t, open, old); s.Summary != open.Summary {
		t.Errorf("summary %q, want the opening one", s.Summary)
	}
}

func TestMatchRuleMessagesHaveNoEmptyFragmentsAndShowTheClassification(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	g := map[string]string{"integration": "stripe"}
	open := event.IncidentOpened{IncidentID: "inc-0123456789abcdef", Rule: "integration-payment-required", Kind: "match", Severity: "P2", Group: g,
		OpenedAt: at, Summary: "stripe: subscription unpaid or credentials refused",
		Evidence: event.Evidence{Failed: 1, Total: 1, Ratio: 1, FirstSeq: 7, LastSeq: 7, Classification: "payment_required", Reason: "Stripe refuses the account's API keys (401)"}}
	flap := event.IncidentEscalated{IncidentID: open.IncidentID, Rule: open.Rule, Group: g, From: "P2", To: "P2", At: at.Add(7 * time.Minute),
		Flapping: &event.Flapping{Cycles: 3, Window: "30m0s"}, Evidence: event.Evidence{}}
	done := event.IncidentResolved{IncidentID: open.IncidentID, Rule: open.Rule, Group: g, OpenedAt: at, ResolvedAt: at.Add(40 * time.Minute), PeakSeverity: "P2"}
	s := fold(t, open)
	const want = "payment_required — Stripe refuses the account's API keys (401), seen once"
	msgs := map[string]string{"root": text(RootBlocks(s)), "fallback": Fallback(StepRoot, s), "console": ConsoleLine("console", &Step{Kind: StepRoot, Snap: s})}
	for name, got := range msgs {
		if !strings.Contains(got, want) {
			t.Errorf("opened %s: %q, want %q", name, got, want)
		}
	}
	f := fold(t, open, flap)
	msgs["flapping reply"] = text(ReplyBlocks(f, false))
	msgs["flapping fallback"] = Fallback(StepReply, f)
	msgs["flapping root"] = text(RootBlocks(f))
	msgs["flapping console"] = ConsoleLine("console", &Step{Kind: StepReply, Snap: f})
	r := fold(t, open, flap, done)
	msgs["resolved reply"] = text(ReplyBlocks(r, false))
	msgs["resolved root"] = Fallback(StepRoot, r)
	for name, got := range msgs {
		for _, empty := range []string{"over  ", "over —", "over \n", " ·  ·", "— —", ", ,"} {
			if strings.Contains(got, empty) || strings.HasSuffix(got, "over ") {
				t.Errorf("%s has an empty fragment %q: %q", name, empty, got)
			}
		}
	}
	for name, want := range map[string]string{"flapping reply": "🔁 *Flapping*", "flapping fallback": "Flapping integration-payment-required",
		"flapping root":    "flapping: opened and resolved more than 3 times in 30m0s, held open until clear for 30m0s",
		"flapping console": "FLAPPING    P2  integration-payment-required"} {
		if !strings.Contains(msgs[name], want) {
			t.Errorf("%s: %q, want %q", name, msgs[name], want)
		}
	}
	if strings.Contains(msgs["flapping reply"], "P2 → P2") {
		t.Errorf("flapping reply reads as an escalation: %q", msgs["flapping reply"])
	}
}

// TestDeescalationReplyPairsItsTimeWithTheEvidenceOfThatTime runs a P1
// that ends through the incident engine into the notifier: the reply says
// when P1's threshold stopped holding and what was counted then (below
// 50 %), not the counts of when the hysteresis ran out.
func TestDeescalationReplyPairsItsTimeWithTheEvidenceOfThatTime(t *testing.T) {
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := incident.ParseRules("test", []byte(`
rules:
  - name: otp-failure-rate
    kind: ratio
    summary: "{app}: {ratio}% of OTP sends failing ({failed}/{total} in {window})"
    match: {types: [otp_delivery_completed]}
    failed: {where: ["status = failed"]}
    groupBy: [app]
    window: 1m
    resolution: 5s
    minVolume: 10
    severities:
      - {level: P1, above: 0.5}
      - {level: P2, atLeast: 0.1}
    resolve: {for: 2m}
`), cat)
	if err != nil {
		t.Fatal(err)
	}
	e := incident.NewEngine(incident.Options{Catalog: cat, Rules: rules})
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// One send every 3 s: all failing for 3 minutes, one in four failing
	// for 3 more (P1 is left 2 min after the ratio drops under 50 %), then none.
	var out []*event.Event
	for i := range 200 {
		status := "delivered"
		if i < 60 || i < 120 && i%4 == 0 {
			status = "failed"
		}
		data := fmt.Sprintf(`{"app":"shop","status":%q,"attempts":1,"latencyMs":100}`, status)
		e.Apply(&incident.Record{Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * 3 * time.Second).UnixNano(), Type: "otp_delivery_completed",
			ID: fmt.Sprintf("ev-%d", i), Data: []byte(data)})
		out = append(out, e.Drain()...)
	}
	s := NewState()
	var down *Transition
	for _, ev := range out {
		if tr := s.Apply(ev); tr != nil && tr.From == "P1" && tr.To == "P2" {
			down = tr
		}
	}
	if down == nil {
		t.Fatalf("no de-escalation among %d transitions", len(out))
	}
	reply := text(ReplyBlocks(down.Snapshot, false))
	ev := down.Evidence
	// The last send counted is no later than the de-escalation's time, and
	// the ratio is under P1's threshold and still at P2's.
	if last := t0.Add(time.Duration(ev.LastSeq-1) * 3 * time.Second); last.After(down.At) || ev.Ratio > .5 || ev.Ratio < .1 {
		t.Errorf("de-escalation at %s with evidence %d/%d, last counted at %s", down.At.Format(time.TimeOnly), ev.Failed, ev.Total, last.Format(time.TimeOnly))
	}
	want := fmt.Sprintf("%s · %d/%d failed", slackDate(down.At), ev.Failed, ev.Total)
	if !strings.Contains(reply, want) || !strings.Contains(down.Summary, fmt.Sprintf("(%d/%d in", ev.Failed, ev.Total)) {
		t.Errorf("reply %q, summary %q: want %q", reply, down.Summary, want)
	}
}
