package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/sms"
)

// The simulator commands go through the HTTP API of the process that runs
// the provider adapter, where the simulator lives (its mode is that
// process's, not an event in the log): --url names that process.

func simulatorCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "simulator",
		Short: "Switch the simulated SMS provider into failure modes, show its mode and outbox",
		Long: `The simulated provider (sim, the demo app's) answers every send in mode ok.
At run time it can refuse every send (fail, with a classification),
answer slowly (slow) or fail a fraction of sends (flaky), to watch an
outage open an incident and its recovery resolve it without a real
provider. The mode belongs to the process running the provider adapter
(--url) and is lost when it stops.`,
	}
	cmd.AddCommand(simulatorSetCmd(e), simulatorStatusCmd(e), simulatorOutboxCmd(e))
	return cmd
}

func simulatorSetCmd(e *env) *cobra.Command {
	var (
		af      apiFlags
		m       sms.SimMode
		class   string
		latency time.Duration
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "set ok|fail|slow|flaky",
		Short: "Set the simulator's mode, e.g. herald simulator set fail --classification transient",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m.Mode, m.Classification = args[0], sms.Classification(class)
			if latency != 0 {
				m.Latency = latency.String()
			}
			var ans struct{ Simulator sms.SimMode }
			if err := af.call(cmd.Context(), http.MethodPut, "/v1/simulator", m, &ans); err != nil {
				return err
			}
			return printSimMode(e.stdout, ans.Simulator, asJSON)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&class, "classification", "", "fail, flaky: what the refused sends answer (default transient; "+
		"payment_required, provider_auth, template_rejected, …)")
	fl.Float64Var(&m.Rate, "rate", 0, "flaky: the fraction of sends that fail (default 0.5)")
	fl.DurationVar(&latency, "latency", 0, "slow: the latency added to each send (default 3s)")
	fl.BoolVar(&asJSON, "json", false, "the mode as JSON")
	af.register(cmd)
	return cmd
}

func simulatorStatusCmd(e *env) *cobra.Command {
	var (
		af     apiFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the simulator's mode",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ans struct{ Simulator sms.SimMode }
			if err := af.call(cmd.Context(), http.MethodGet, "/v1/simulator", nil, &ans); err != nil {
				return err
			}
			return printSimMode(e.stdout, ans.Simulator, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "the mode as JSON")
	af.register(cmd)
	return cmd
}

func printSimMode(w io.Writer, m sms.SimMode, asJSON bool) error {
	if asJSON {
		b, _ := json.Marshal(m)
		_, err := fmt.Fprintln(w, string(b))
		return err
	}
	parts := []string{"simulator: " + m.Mode}
	if m.Classification != "" {
		parts = append(parts, "classification="+string(m.Classification))
	}
	if m.Rate != 0 {
		parts = append(parts, fmt.Sprintf("rate=%g", m.Rate))
	}
	if m.Latency != "" {
		parts = append(parts, "latency="+m.Latency)
	}
	if !m.Since.IsZero() {
		parts = append(parts, "since "+m.Since.Format(time.RFC3339))
	}
	_, err := fmt.Fprintln(w, strings.Join(parts, "  "))
	return err
}

func simulatorOutboxCmd(e *env) *cobra.Command {
	var (
		af     apiFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "The recent messages the simulator answered, codes included (test numbers; every message in demo mode)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ans struct{ Messages []sms.OutboxEntry }
			if err := af.call(cmd.Context(), http.MethodGet, "/v1/simulator/outbox", nil, &ans); err != nil {
				return err
			}
			if asJSON {
				for _, m := range ans.Messages {
					b, _ := json.Marshal(m)
					fmt.Fprintln(e.stdout, string(b))
				}
				return nil
			}
			if len(ans.Messages) == 0 {
				fmt.Fprintln(e.stdout, "no messages")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tTO\tROUTE\tANSWER\tTEXT")
			for _, m := range ans.Messages {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Time.Format(time.RFC3339), m.To, m.Route, m.Classification, m.Text)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	af.register(cmd)
	return cmd
}
