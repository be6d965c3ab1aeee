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
	cmd.AddCommand(rulesCheckCmd(e), rulesTestCmd(e), rulesDefaultsCmd(e))
	return cmd
}

func rulesCheckCmd(e *env) *cobra.Command {
	var asJSON, defaults bool
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a rules file against the event catalog",
		Long: `Validate an incident rules file (YAML: "rules:" and a list of rules), laid
over the default rules as herald serve lays incident.rulesFile (a rule named
like a default one replaces it; names resolve against the merged set), or
alone with --defaults=false. Every error names the rule and the field at
fault; the exit code is 2 if any. With --json the compiled, canonical rule
set is printed (the document the projection records in the log).`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			file, rs, source, err := compileRulesFile(args[0], defaults)
			if err != nil {
				return err
			}
			if asJSON {
				var doc any
				_ = json.Unmarshal([]byte(rs.Document), &doc)
				out, _ := json.MarshalIndent(doc, "", "  ")
				fmt.Fprintln(e.stdout, string(out))
				return nil
			}
			fmt.Fprintf(e.stdout, "%s: %d rules OK, %d in force with %s (fingerprint %s)\n", args[0], len(file.Rules), len(rs.List()), source, rs.Fingerprint[:12])
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
	cmd.Flags().BoolVar(&defaults, "defaults", true, "lay the file over the default rules (incident.defaultRules)")
	return cmd
}

// compileRulesFile reads a rules file and compiles it, over the default
// rules when defaults is set, as herald serve would.
func compileRulesFile(path string, defaults bool) (incident.RuleSet, *incident.Rules, string, error) {
	var file incident.RuleSet
	b, err := os.ReadFile(path)
	if err != nil {
		return file, nil, "", usagef("%v", err)
	}
	cat, err := event.NewCatalog()
	if err != nil {
		return file, nil, "", err
	}
	if file, err = incident.DecodeRules(path, b); err != nil {
		return file, nil, "", err
	}
	if len(file.Rules) == 0 {
		return file, nil, "", usagef("%s: no rules (the file needs \"rules:\" and a list)", path)
	}
	var layers []incident.Layer
	if defaults {
		d, err := incident.DefaultLayer()
		if err != nil {
			return file, nil, "", err
		}
		layers = append(layers, d)
	}
	set, source := incident.Merge(append(layers, incident.Layer{Source: path, Rules: file.Rules})...)
	rs, err := incident.Compile(source, set, cat)
	return file, rs, source, err
}

func rulesTestCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "test FILE...",
		Short: "Run rule tests: events at given times, the incidents expected",
		Long: `Run incident rule tests, in the spirit of promtool test rules. A test file
names the rule files it tests (ruleFiles, laid over the default rules unless
defaultRules: false) and lists tests: series of events at offsets from a start,
and the incidents expected at given times (rule, group, state, severity,
onset, transitions). The engine folds on event time, so a test that passes
always passes. docs/incidents.md describes the format;
pkg/incident/default_rules.test.yaml tests the default rules.

Exit codes: 0 every test passed, 1 a test failed, 2 a file could not be read
or its rules do not compile.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cat, err := event.NewCatalog()
			if err != nil {
				return err
			}
			failed := 0
			for _, path := range args {
				rt, rules, err := incident.LoadRuleTests(path, cat)
				if err != nil {
					return err
				}
				for _, r := range rt.Run(cat, rules) {
					if len(r.Failures) > 0 {
						failed++
					}
					printRuleTest(e, path, r, asJSON)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d rule test(s) failed", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON line per test")
	return cmd
}

func printRuleTest(e *env, path string, r incident.RuleTestResult, asJSON bool) {
	if asJSON {
		printJSON(e, struct {
			File string `json:"file"`
			incident.RuleTestResult
			Passed bool `json:"passed"`
		}{path, r, len(r.Failures) == 0})
		return
	}
	if len(r.Failures) == 0 {
		fmt.Fprintf(e.stdout, "PASS  %s: %s\n", path, r.Name)
		return
	}
	fmt.Fprintf(e.stdout, "FAIL  %s: %s\n", path, r.Name)
	for _, f := range r.Failures {
		fmt.Fprintf(e.stdout, "        %s\n", f)
	}
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
