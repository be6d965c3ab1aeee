package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/services/incidents"
)

func incidentsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "incidents",
		Short: "List and show incidents (read from the INCIDENTS stream)",
		Long: `List and show incidents as their published transitions in the INCIDENTS stream
tell them: opened, escalated, suppressed, resolved. The running service's
own view (with unpublished detail) is GET /v1/incidents.`,
	}
	cmd.AddCommand(incidentsListCmd(e), incidentsShowCmd(e), incidentsRebuildCmd(e))
	return cmd
}

func incidentsListCmd(e *env) *cobra.Command {
	var (
		cf     clientFlags
		f      incidents.Filter
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List incidents, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := incidents.ParseFilter(map[string][]string{"state": {f.State}, "severity": {f.Severity}}); err != nil {
				return usagef("%v", err)
			}
			incs, err := readIncidents(cmd.Context(), &cf)
			if err != nil {
				return err
			}
			n := 0
			for _, inc := range incs {
				if !f.Match(inc) {
					continue
				}
				if limit > 0 && n == limit {
					break
				}
				n++
				if asJSON {
					printJSON(e, inc)
				} else {
					fmt.Fprintln(e.stdout, incident.Line(inc))
				}
			}
			if n == 0 && !asJSON {
				fmt.Fprintln(e.stdout, "no incidents")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.State, "state", "", "open (flapping included), flapping, resolved or suppressed")
	fl.StringVar(&f.Severity, "severity", "", "P1, P2 or P3 (current severity)")
	fl.StringVar(&f.App, "app", "", "only this app")
	fl.StringVar(&f.Provider, "provider", "", "only this provider")
	fl.StringVar(&f.Rule, "rule", "", "only this rule")
	fl.IntVarP(&limit, "limit", "n", 0, "at most this many")
	fl.BoolVar(&asJSON, "json", false, "one JSON object per line")
	cf.register(cmd, access.OperatorRead)
	return cmd
}

func incidentsShowCmd(e *env) *cobra.Command {
	var (
		cf     clientFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one incident: transitions, evidence, suppressions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			incs, err := readIncidents(cmd.Context(), &cf)
			if err != nil {
				return err
			}
			for _, inc := range incs {
				if inc.ID != args[0] {
					continue
				}
				if asJSON {
					b, _ := json.MarshalIndent(inc, "", "  ")
					fmt.Fprintln(e.stdout, string(b))
					return nil
				}
				printIncident(e, inc)
				return nil
			}
			return usagef("no incident %q in INCIDENTS", args[0])
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cf.register(cmd, access.OperatorRead)
	return cmd
}

func printIncident(e *env, inc *incident.Incident) {
	w := e.stdout
	fmt.Fprintf(w, "%s  %s (%s)\n", inc.ID, inc.Rule, inc.Kind)
	fmt.Fprintf(w, "  summary:   %s\n", inc.Summary)
	var g []string
	for _, l := range inc.Group {
		g = append(g, l.Name+"="+l.Value)
	}
	fmt.Fprintf(w, "  group:     %s\n", strings.Join(g, " "))
	fmt.Fprintf(w, "  state:     %s, severity %s, peak %s\n", inc.State, inc.Severity, inc.PeakSeverity)
	fmt.Fprintf(w, "  opened:    %s\n", inc.OpenedAt.Format(time.RFC3339Nano))
	if inc.ResolvedAt != nil {
		fmt.Fprintf(w, "  resolved:  %s (after %s)\n", inc.ResolvedAt.Format(time.RFC3339Nano), inc.ResolvedAt.Sub(inc.OpenedAt))
	}
	if inc.SuppressedBy != "" {
		fmt.Fprintf(w, "  suppressed by %s\n", inc.SuppressedBy)
	}
	if inc.Runbook != "" {
		fmt.Fprintf(w, "  runbook:   %s\n", inc.Runbook)
	}
	fmt.Fprintln(w, "  transitions:")
	for _, t := range inc.Transitions {
		sev := t.Severity
		if t.From != "" {
			sev = t.From + "→" + t.Severity
		}
		ev := t.Evidence
		fmt.Fprintf(w, "    #%d %-20s %-6s at %s (decided %s)  %d/%d in %s ratio %.2f seq %d–%d samples %s\n", t.Ordinal, t.Type, sev,
			t.At.Format(time.RFC3339), t.DecidedAt.Format(time.RFC3339), ev.Failed, ev.Total, ev.Window, ev.Ratio,
			ev.FirstSeq, ev.LastSeq, strings.Join(ev.Samples, ","))
	}
	for _, s := range inc.Suppressions {
		fmt.Fprintf(w, "  suppressed %s (%s, %s) at %s\n", s.IncidentID, s.Rule, s.Severity, s.At.Format(time.RFC3339))
	}
}

func readIncidents(ctx context.Context, cf *clientFlags) ([]*incident.Incident, error) {
	b, err := cf.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer closeBus(b)
	evs, err := incident.ReadPublished(ctx, b)
	if err != nil {
		return nil, err
	}
	return incident.FoldPublished(evs), nil
}

func incidentsRebuildCmd(e *env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Ask the running incident service to rebuild its projection from the start of the log",
		Long: `Rebuild the incident projection from zero: the active incident writer throws
its state away and folds EVENTS again. The transitions it derives again are
refused by INCIDENTS (write-once subjects), so nothing is notified twice.

The request goes over NATS with the operator-admin role (like streams apply);
only the active writer answers. With no answer within --timeout (no incident
service running, none holding the lease, or credentials that may not ask)
the command fails (exit 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			ctx, cancel := context.WithTimeout(cmd.Context(), cf.timeout)
			defer cancel()
			m, err := b.NC.RequestWithContext(ctx, access.IncidentRebuild, nil)
			if err != nil {
				return fmt.Errorf("rebuild: no incident writer answered within %s: %w", cf.timeout, err)
			}
			var ans incidents.RebuildAnswer
			if err := json.Unmarshal(m.Data, &ans); err != nil {
				return fmt.Errorf("rebuild: unreadable answer: %w", err)
			}
			if ans.Error != "" {
				return fmt.Errorf("rebuild: %s", ans.Error)
			}
			fmt.Fprintln(e.stdout, "rebuilding from the start of the log")
			return nil
		},
	}
	cf.register(cmd, access.OperatorAdmin)
	return cmd
}
