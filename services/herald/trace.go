package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/trace"
)

func traceCmd(e *env) *cobra.Command {
	var (
		cf     clientFlags
		since  time.Duration
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "trace REQUEST_ID",
		Short: "One request end to end: each event with its time, the gap before it, the provider's answers, the outcome",
		Long: `Follow one request (an OTP send's requestId) through EVENTS, as the runbook's
"inspect one requestId end to end" asks: otp_generated, otp_dlt_dispatch,
dlt_payload_ready, provider_response_received / provider_response_failed,
otp_dlt_fallback, otp_dlt_hard_failure, otp_delivery_completed, with when
each happened, the gap since the step before, and how it ended. The log is
read from its start, or --since ago. Exit code 1 when the log has no event
of the request.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			var opts trace.Options
			if since > 0 {
				opts.Since = time.Now().Add(-since)
			}
			tr, err := trace.Read(cmd.Context(), b, args[0], opts)
			if err != nil {
				return err
			}
			if len(tr.Steps) == 0 {
				return fmt.Errorf("no event of request %s in EVENTS", args[0])
			}
			if asJSON {
				printJSON(e, tr)
				return nil
			}
			printTrace(e, tr)
			return nil
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "read the log from this long ago (default: from its start)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the trace as one JSON object")
	cf.register(cmd, access.OperatorRead)
	return cmd
}

func printTrace(e *env, tr *trace.Trace) {
	fmt.Fprintf(e.stdout, "request %s", tr.RequestID)
	if tr.App != "" {
		fmt.Fprintf(e.stdout, "  app %s", tr.App)
	}
	fmt.Fprintf(e.stdout, "  %s in %s\n", tr.Outcome, tr.Duration.Round(time.Millisecond))
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AT\t+\tGAP\tSEQ\tEVENT\tSOURCE\tDETAIL")
	for _, s := range tr.Steps {
		d := s.Detail
		if s.Invalid != "" {
			d = "invalid: " + s.Invalid
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Time.Format("15:04:05.000"), ms(s.Since), ms(s.Gap), s.Seq, s.Type, s.Source, d)
	}
	_ = w.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
