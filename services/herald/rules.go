package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
)

func rulesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check incident rule files, print the default rules",
	}
	cmd.AddCommand(rulesCheckCmd(e), rulesDefaultsCmd(e))
	return cmd
}

func rulesCheckCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a rules file against the event catalog",
		Long: `Validate an incident rules file (YAML: "rules:" and a list of rules). Every
error names the rule and the field at fault; the exit code is 2 if any.
With --json the compiled, canonical rule set is printed (the document the
projection records in the log).`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			cat, err := event.NewCatalog()
			if err != nil {
				return err
			}
			rs, err := incident.ParseRules(args[0], b, cat)
			if err != nil {
				return err
			}
			if len(rs.List()) == 0 {
				return usagef("%s: no rules (the file needs \"rules:\" and a list)", args[0])
			}
			if asJSON {
				var doc any
				_ = json.Unmarshal([]byte(rs.Document), &doc)
				out, _ := json.MarshalIndent(doc, "", "  ")
				fmt.Fprintln(e.stdout, string(out))
				return nil
			}
			fmt.Fprintf(e.stdout, "%s: %d rules OK (fingerprint %s)\n", args[0], len(rs.List()), rs.Fingerprint[:12])
			for _, r := range rs.List() {
				var levels []string
				for _, s := range r.Severities {
					levels = append(levels, s.Level)
				}
				fmt.Fprintf(e.stdout, "  %-30s %-8s groupBy=%s severities=%s\n", r.Name, r.Kind, strings.Join(r.GroupBy, ","), strings.Join(levels, ","))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the canonical rule set as JSON")
	return cmd
}

func rulesDefaultsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "defaults",
		Short: "Print the default incident rules (a starting point for a rules file)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := e.stdout.Write(incident.DefaultRulesYAML())
			return err
		},
	}
}
