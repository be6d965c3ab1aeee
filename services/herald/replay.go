package main

import (
	"github.com/spf13/cobra"
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
			return replaySlack(cmd.Context(), e, &cf, asJSON)
		},
	}
	cmd.Flags().StringVar(&projection, "projection", "", "projection to rebuild: slack")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the projection as JSON")
	cf.register(cmd)
	return cmd
}
