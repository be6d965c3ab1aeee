package notifier

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// Messages are rendered from a snapshot only (event time, never the wall
// clock), so the same transition always renders the same message.

func severityIcon(s Snapshot) string {
	if s.State == event.StateResolved {
		return "✅"
	}
	switch s.Severity {
	case "P1":
		return "🔴"
	case "P2":
		return "🟠"
	}
	return "🟡"
}

// groupString writes the group's well-known keys first, then the others.
func groupString(g map[string]string) string {
	known := []string{"app", "provider", "route", "integration"}
	var parts []string
	for _, k := range known {
		if v, ok := g[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	var rest []string
	for k, v := range g {
		if !slices.Contains(known, k) {
			rest = append(rest, k+"="+v)
		}
	}
	sort.Strings(rest)
	return strings.Join(append(parts, rest...), " ")
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// slackDate lets Slack show a time in each reader's own time zone.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), clock(t))
}

func duration(s Snapshot) string {
	if s.OpenedAt.IsZero() || s.ResolvedAt.IsZero() {
		return "unknown"
	}
	d := s.ResolvedAt.Sub(s.OpenedAt).Round(time.Second).String()
	if strings.HasSuffix(d, "m0s") {
		d = strings.TrimSuffix(d, "0s")
	}
	if strings.HasSuffix(d, "h0m") {
		d = strings.TrimSuffix(d, "0m")
	}
	return d
}

// evidence is the incident's evidence in words. Every fragment is there
// only when it has something to say: a match rule has no window, and its
// hits are not "failed out of" anything.
func evidence(s Snapshot) string {
	e := s.Evidence
	var text string
	switch {
	case s.Kind == "match" || e.Window == "" && e.Failed == e.Total:
		text = hits(e.Total)
	case e.Total > 0:
		text = fmt.Sprintf("%d/%d failed (%.0f%%)", e.Failed, e.Total, e.Ratio*100)
	case e.Failed > 0:
		text = fmt.Sprintf("%d failures", e.Failed)
	default:
		text = "no matching events"
	}
	if e.Window != "" && s.Kind != "match" {
		text += " over " + e.Window
	}
	if e.Classification == "" {
		return text
	}
	// What the answers meant, and why Herald says so (pkg/classify).
	class := escape(e.Classification)
	if e.Reason != "" {
		class += " — " + escape(e.Reason)
	}
	if e.Total == 0 {
		return class
	}
	return class + ", " + text
}

// hits counts a match rule's matched events.
func hits(n int) string {
	switch n {
	case 0:
		return "condition clear" // the rule's clear event came
	case 1:
		return "seen once"
	}
	return fmt.Sprintf("seen %d times", n)
}

// flapHold says why a flapping incident stays open.
func flapHold(s Snapshot) string {
	f := s.Flapping
	return fmt.Sprintf("opened and resolved more than %d times in %s, held open until clear for %s", f.Cycles, f.Window, f.Window)
}

func title(s Snapshot) string {
	head := s.Severity + " · " + s.Rule
	if s.State == event.StateResolved {
		head = "Resolved · " + s.Rule
	}
	if g := groupString(s.Group); g != "" {
		head += " · " + g
	}
	return severityIcon(s) + " " + head
}

// Fallback is the plain text of a message: the notification, and what
// clients without Block Kit show.
func Fallback(kind string, s Snapshot) string {
	if kind == StepUpdate {
		kind = StepRoot // an edit rewrites the root message
	}
	s.Summary, s.Rule = escape(s.Summary), escape(s.Rule)
	s.Group = escapedGroup(s.Group)
	var b strings.Builder
	switch {
	case kind == StepRoot && s.State == event.StateResolved:
		fmt.Fprintf(&b, "[resolved] %s (%s): %s — opened %s, resolved after %s, peak %s",
			s.Rule, groupString(s.Group), s.Summary, clock(s.OpenedAt), duration(s), s.Peak)
	case kind == StepRoot:
		fmt.Fprintf(&b, "[%s] %s (%s): %s — since %s — %s", s.Severity, s.Rule, groupString(s.Group), s.Summary,
			clock(s.OpenedAt), evidence(s))
	case s.State == event.StateResolved:
		fmt.Fprintf(&b, "Resolved %s (%s) at %s after %s, peak %s", s.Rule, groupString(s.Group), clock(s.ResolvedAt),
			duration(s), s.Peak)
	case verb(s) == "Flapping":
		fmt.Fprintf(&b, "Flapping %s (%s) %s at %s: %s; %s", s.Rule, groupString(s.Group), s.To, clock(s.At), flapHold(s), evidence(s))
	default:
		fmt.Fprintf(&b, "%s %s (%s) %s → %s at %s: %s", verb(s), s.Rule, groupString(s.Group), s.From, s.To, clock(s.At),
			evidence(s))
	}
	if kind == StepRoot && s.Runbook != "" {
		fmt.Fprintf(&b, " — runbook %s", s.Runbook)
	}
	return slack.Truncate(b.String(), slack.MaxFallbackText)
}

func verb(s Snapshot) string {
	if s.Flapping != nil && s.From == s.To {
		return "Flapping" // the start of flap control's hold: the severity did not change
	}
	if severityRank(s.To) < severityRank(s.From) {
		return "De-escalated"
	}
	return "Escalated"
}

// RootBlocks renders an incident's root message: severity, rule, group,
// onset, evidence and runbook, within Slack's limits.
func RootBlocks(s Snapshot) []slack.Block {
	blocks := []slack.Block{slack.Header(title(s))}
	if s.Summary != "" {
		blocks = append(blocks, slack.Section("*"+escape(s.Summary)+"*"))
	}
	status := "Open since " + slackDate(s.OpenedAt)
	if s.Flapping != nil {
		status += "\n🔁 flapping: " + flapHold(s)
	}
	if s.State == event.StateResolved {
		status = fmt.Sprintf("Resolved %s after %s", slackDate(s.ResolvedAt), duration(s))
	}
	sev := s.Severity
	switch {
	case s.State == event.StateResolved:
		sev = "peak " + s.Peak
	case s.Peak != "" && s.Peak != s.Severity:
		sev += " (peak " + s.Peak + ")"
	}
	rule := s.Rule
	if s.Kind != "" {
		rule += " (" + s.Kind + ")"
	}
	fields := []string{
		"*Severity*\n" + sev,
		"*Status*\n" + status,
		"*Rule*\n" + escape(rule),
		"*Group*\n" + escape(orNone(groupString(s.Group))),
		"*Onset*\n" + slackDate(s.OpenedAt),
		"*Evidence*\n" + evidence(s),
	}
	blocks = append(blocks, slack.Fields(fields...))
	if s.Runbook != "" {
		blocks = append(blocks, slack.Section(fmt.Sprintf("📖 <%s|Runbook>", s.Runbook)))
	}
	blocks = append(blocks, slack.Context(contextLine(s)))
	return slack.Limit(blocks)
}

// ReplyBlocks renders a transition's thread reply.
func ReplyBlocks(s Snapshot, standalone bool) []slack.Block {
	var line string
	if s.State == event.StateResolved {
		line = fmt.Sprintf("✅ *Resolved* %s after %s · peak %s · %s", slackDate(s.ResolvedAt), duration(s), s.Peak, evidence(s))
	} else if verb(s) == "Flapping" {
		line = fmt.Sprintf("🔁 *Flapping* %s · %s · %s", slackDate(s.At), flapHold(s), evidence(s))
	} else {
		arrow := "⬆️"
		if verb(s) == "De-escalated" {
			arrow = "⬇️"
		}
		// At and the evidence are of one moment: the engine dates a
		// de-escalation when the threshold stopped holding and sends the
		// evidence counted then.
		line = fmt.Sprintf("%s *%s %s → %s* %s · %s", arrow, verb(s), s.From, s.To, slackDate(s.At), evidence(s))
	}
	blocks := []slack.Block{slack.Section(line)}
	if standalone {
		// Without a thread, say which incident this is about.
		blocks = append(blocks, slack.Context(escape(s.Rule+" · "+groupString(s.Group))+" · "+contextLine(s)))
	}
	return blocks
}

func contextLine(s Snapshot) string {
	parts := []string{"incident `" + s.IncidentID + "`"}
	if e := s.Evidence; e.LastSeq > 0 {
		parts = append(parts, fmt.Sprintf("EVENTS #%d–#%d", e.FirstSeq, e.LastSeq))
	}
	if n := len(s.Evidence.Samples); n > 0 {
		ids := s.Evidence.Samples[:min(n, 5)]
		parts = append(parts, "requests `"+strings.Join(ids, "`, `")+"`")
	}
	return strings.Join(parts, " · ")
}

func orNone(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func escapedGroup(g map[string]string) map[string]string {
	out := make(map[string]string, len(g))
	for k, v := range g {
		out[escape(k)] = escape(v)
	}
	return out
}

// escape keeps user text from being read as Slack markup.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// ConsoleLine renders a step as one readable line.
func ConsoleLine(dst string, st *Step) string {
	s := st.Snap
	var b strings.Builder
	if dst != "console" {
		fmt.Fprintf(&b, "[%s] ", dst)
	}
	fmt.Fprintf(&b, "%s  ", s.At.UTC().Format(time.RFC3339))
	switch {
	case s.State == event.StateResolved:
		fmt.Fprintf(&b, "RESOLVED   peak %s  %s  %s  %s  after %s", s.Peak, s.Rule, orNone(groupString(s.Group)), s.IncidentID, duration(s))
	case s.Ordinal == 0 || st.Kind == StepRoot && s.From == "":
		fmt.Fprintf(&b, "OPENED     %s  %s  %s  %s  %q  %s", s.Severity, s.Rule, orNone(groupString(s.Group)), s.IncidentID, s.Summary, evidence(s))
		if s.Runbook != "" {
			fmt.Fprintf(&b, "  runbook %s", s.Runbook)
		}
	default:
		word := "ESCALATED "
		switch verb(s) {
		case "De-escalated":
			word = "DEESCALATED"
		case "Flapping":
			word = "FLAPPING   "
		}
		sev := s.From + "→" + s.To
		if word == "FLAPPING   " {
			sev = s.To // held at its severity
		}
		fmt.Fprintf(&b, "%s %s  %s  %s  %s  %s", word, sev, s.Rule, orNone(groupString(s.Group)), s.IncidentID, evidence(s))
	}
	return b.String()
}

// WebhookPayload is what a generic JSON webhook receives.
type WebhookPayload struct {
	Type       string   `json:"type"`
	IncidentID string   `json:"incidentId"`
	Transition string   `json:"transition"`
	Text       string   `json:"text"`
	Incident   Snapshot `json:"incident"`
}

func webhookPayload(st *Step) WebhookPayload {
	typ := "incident_escalated"
	switch {
	case st.Snap.State == event.StateResolved:
		typ = "incident_resolved"
	case st.Snap.Ordinal == 0:
		typ = "incident_opened"
	}
	return WebhookPayload{Type: typ, IncidentID: st.Snap.IncidentID, Transition: st.Snap.Transition,
		Text: Fallback(st.Kind, st.Snap), Incident: st.Snap}
}
