package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/services/notifier"
)

func replayCmd(e *env) *cobra.Command {
	var (
		cf         clientFlags
		projection string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild a projection from the log, with no side effect",
		Long: `Rebuild a projection from the event log and show it. Nothing is posted or
published: a replay never repeats a side effect.

  --projection slack   the notifier's view: incidents (INCIDENTS), where each one
                       went and what was posted, edited or given up on
                       (NOTIFICATIONS), subscriptions, and what is left to deliver.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if projection != "slack" {
				return usagef("--projection: %q is not a projection (projections: slack)", projection)
			}
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Hour)
			defer cancel()
			start := time.Now()
			st, err := notifier.Rebuild(ctx, b, nil)
			if err != nil {
				return err
			}
			r := st.Report()
			if asJSON {
				out, _ := json.MarshalIndent(r, "", "  ")
				fmt.Fprintln(e.stdout, string(out))
				return nil
			}
			fmt.Fprintf(e.stdout, "slack projection rebuilt from INCIDENTS and NOTIFICATIONS in %s; nothing was posted\n",
				time.Since(start).Round(time.Millisecond))
			r.Write(e.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&projection, "projection", "", "projection to rebuild: slack")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the projection as JSON")
	cf.register(cmd)
	return cmd
}
