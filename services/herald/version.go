package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/version"
)

func versionCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the build: version, VCS revision, Go version and platform",
		Long: `Print which build of herald this is, from the binary's own build information
(the same labels as the herald_build_info metric). herald --version prints
the same line.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			in := version.Read()
			if asJSON {
				printJSON(e, in)
				return nil
			}
			fmt.Fprintln(e.stdout, in)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the build information as JSON")
	return cmd
}
