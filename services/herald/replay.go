package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/incident"
)

// replayProjections are the projections herald replay can rebuild.
var replayProjections = []string{"incidents", "slack"}

func replayCmd(e *env) *cobra.Command {
	var (
		cf         clientFlags
		projection string
		rulesFile  string
		from, to   string
		asJSON     bool
		progress   bool
		maxSkew    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild a projection from the log, with no side effect (and back-test incident rules)",
		Long: `Rebuild a projection from the event log and show it. Nothing is posted or
published: a replay never repeats a side effect.

--projection slack: the notifier's view: incidents (INCIDENTS), where each one
went and what was posted, edited or given up on (NOTIFICATIONS),
subscriptions, and what is left to deliver.

--projection incidents (the default) back-tests incident rules: the range is
folded through the rules of --rules FILE (or, without it, through the rules
recorded in the log), and the incidents they would have opened in the range
are printed with a diff against the incidents published for that range:

  = same    the published incident, with the same outcome
  ~ changed the same incident (rule, group, onset) with other severities or end
  + added   an incident only the replayed rules open
  - removed a published incident the replayed rules would not open

  herald replay --rules new-rules.yaml --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z
  herald replay --rules new-rules.yaml --from 24h        # the last 24 hours

--from/--to take RFC 3339 times or durations before now. Events are matched
by event time; the fold starts empty at --from, so a rule whose window or
absence reaches before it sees only what is in the range.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch projection {
			case "incidents":
			case "slack":
				return replaySlack(cmd.Context(), e, &cf, asJSON)
			default:
				return usagef("--projection: %q is not a projection (projections: %s)", projection, strings.Join(replayProjections, ", "))
			}
			now := time.Now()
			t1, err := parseWhen(from, now)
			if err != nil {
				return usagef("--from: %v", err)
			}
			t2, err := parseWhen(to, now)
			if err != nil {
				return usagef("--to: %v", err)
			}
			if !t1.IsZero() && !t2.IsZero() && !t1.Before(t2) {
				return usagef("--from must be before --to")
			}
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			opts := incident.BacktestOptions{From: t1, To: t2, MaxSkew: maxSkew}
			if rulesFile != "" {
				doc, err := os.ReadFile(rulesFile)
				if err != nil {
					return usagef("--rules: %v", err)
				}
				if opts.Rules, err = incident.ParseRules(rulesFile, doc, b.Catalog); err != nil {
					return err
				}
			}
			var bar *progressbar.ProgressBar
			if progress {
				bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(e.stderr), progressbar.OptionSetDescription("replaying EVENTS"),
					progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"),
					progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
				opts.Progress = func(done, total uint64) {
					bar.ChangeMax64(int64(total))
					_ = bar.Set64(int64(done))
				}
			}
			res, err := incident.Backtest(cmd.Context(), b, opts)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return err
			}
			pubEvents, err := incident.ReadPublished(cmd.Context(), b)
			if err != nil {
				return err
			}
			var published []*incident.Incident
			for _, inc := range incident.FoldPublished(pubEvents) {
				if incident.InRange(inc, t1, t2) {
					published = append(published, inc)
				}
			}
			diff := incident.Compare(res.Incidents, published, t2)
			if asJSON {
				out, _ := json.MarshalIndent(map[string]any{
					"from": t1, "to": t2, "events": res.Events, "invalid": res.Invalid, "incidents": res.Incidents, "diff": diff,
				}, "", "  ")
				fmt.Fprintln(e.stdout, string(out))
				return nil
			}
			rules := "the rules recorded in the log"
			if rulesFile != "" {
				rules = rulesFile
			}
			fmt.Fprintf(e.stdout, "replayed %d events through %s (%s → %s)\n", res.Events, rules, when(t1), when(t2))
			fmt.Fprintf(e.stdout, "\nincidents it would have produced (%d):\n", len(res.Incidents))
			incident.WriteTable(e.stdout, res.Incidents)
			fmt.Fprintf(e.stdout, "\ndiff against the %d published incidents of the range: %d same, %d changed, %d added, %d removed\n",
				len(published), len(diff.Same), len(diff.Changed), len(diff.Added), len(diff.Removed))
			for _, inc := range diff.Same {
				fmt.Fprintln(e.stdout, "= "+incident.Line(inc))
			}
			for _, c := range diff.Changed {
				fmt.Fprintf(e.stdout, "~ %s\n    %s\n", incident.Line(c.Backtest), strings.Join(c.What, "; "))
			}
			for _, inc := range diff.Added {
				fmt.Fprintln(e.stdout, "+ "+incident.Line(inc))
			}
			for _, inc := range diff.Removed {
				fmt.Fprintln(e.stdout, "- "+incident.Line(inc))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&projection, "projection", "incidents", "projection to replay: "+strings.Join(replayProjections, ", "))
	f.StringVar(&rulesFile, "rules", "", "incident rules file to back-test (default: the rules recorded in the log)")
	f.StringVar(&from, "from", "", "start of the range: RFC 3339 time or a duration before now (default: the start of the log)")
	f.StringVar(&to, "to", "", "end of the range (exclusive): RFC 3339 time or a duration before now (default: the end of the log)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&progress, "progress", true, "show a progress bar on standard error")
	f.DurationVar(&maxSkew, "max-clock-skew", time.Minute, "bound on an event's time ahead of its storage time (as the service)")
	cf.register(cmd, access.OperatorRead)
	return cmd
}

// parseWhen reads an RFC 3339 time or a duration before now ("" is zero).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration before now (like 24h)", s)
	}
	return now.Add(-d).UTC(), nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return "…"
	}
	return t.Format(time.RFC3339)
}
