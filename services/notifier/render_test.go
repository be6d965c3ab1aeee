package notifier

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/pkg/event"
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
