package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The README and docs/ show herald command lines; each must name commands
// and flags the binary has. The tree is the one herald runs (newRoot), so a
// renamed or removed flag fails here, naming the doc's file and line.
func TestDocsShowOnlyCommandsAndFlagsTheBinaryHas(t *testing.T) {
	root := newRoot(&env{})
	walk(root, func(c *cobra.Command) { c.InitDefaultHelpFlag(); c.InitDefaultVersionFlag() })
	seen := 0
	for _, doc := range readDocs(t) {
		for _, dc := range docCommands(doc.text) {
			seen++
			if err := checkCommand(root, dc); err != nil {
				t.Errorf("%s:%d: %s: %v", doc.name, dc.line, dc.text, err)
			}
		}
	}
	// The parser must keep finding them: the README alone shows dozens.
	t.Logf("%d herald command lines and flags checked", seen)
	if seen < 50 {
		t.Errorf("found only %d herald command lines and flags in the docs", seen)
	}
}

// A doc that names a command or flag that does not exist fails, and one that
// does passes: the checker itself, on lines of each shape the docs use.
func TestDocsCheckerCatchesWhatDoesNotExist(t *testing.T) {
	root := newRoot(&env{})
	walk(root, func(c *cobra.Command) { c.InitDefaultHelpFlag(); c.InitDefaultVersionFlag() })
	doc := strings.Join([]string{
		"Run `herald serve --config FILE` or `herald streams apply\\|info`, `herald <command> --help`.", // 1
		"| `herald keys new` | mint a key (`--name`, `--role producer --apps … --types …`) |",           // 2
		"```sh", // 3
		"go run ./services/herald tail --all --follow=false \\",     // 4
		"  --stream DLQ | jq .   # a comment --bogus",               // 5
		"HERALD_X=1 herald keys hash < shop.key && herald dlq list", // 6
		"herald incidents list [--state --severity --json]",         // 7
		"```",                              // 8
		"`herald serve --nats-lisen none`", // 9
		"`herald stream apply` and `herald dlq list\\|shw`", // 10
		"```console",                         // 11
		"$ herald tail --bogus",              // 12
		"herald tail --output-not-a-command", // 13
		"```",                                // 14
		"`herald keys new` (`--nme`) and `--data-dirr`",                                // 15
		"    herald rules check -x FILE",                                               // 16
		"There is no `herald bench notifier` command, there is no `herald bench bus`.", // 17
		"| `herald keys new\\|hash` | (`--role operator`, `--rol`) |",                  // 18
	}, "\n")
	var bad []string
	for _, dc := range docCommands(doc) {
		if err := checkCommand(root, dc); err != nil {
			bad = append(bad, fmt.Sprintf("%d: %v", dc.line, err))
		}
	}
	want := []string{
		"9: herald serve: unknown flag --nats-lisen",
		"10: herald: unknown command \"stream\"",
		"10: herald dlq: unknown command \"shw\"",
		"12: herald tail: unknown flag --bogus",
		"15: herald keys new: unknown flag --nme",
		"15: herald keys new: unknown flag --data-dirr",
		"16: herald rules check: unknown flag -x",
		"17: the doc says there is no such command, but there is",
		"18: herald keys new, herald keys hash: unknown flag --rol",
	}
	if !slices.Equal(bad, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(bad, "\n"), strings.Join(want, "\n"))
	}
}

// docFile is a document the docs tests read.
type docFile struct {
	name string // from the repository's root
	path string // from this package
	text string
}

// readDocs reads README.md, deploy/README.md and docs/*.md.
func readDocs(t *testing.T) []docFile {
	t.Helper()
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docFile
	for _, path := range append([]string{"../../README.md", "../../deploy/README.md"}, docs...) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, docFile{name: strings.TrimPrefix(path, "../../"), path: path, text: string(b)})
	}
	return out
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// docCommand is a herald command line found in a document, or a flag
// shown alone in backticks.
type docCommand struct {
	line int
	text string
	args []string // after "herald"; for a lone flag, the flag
	// lone: a flag in backticks on its own. It is checked against the
	// herald command shown earlier on the same line (a table row or a
	// sentence about it), else against every command.
	lone bool
	// of is that earlier command's args, one list per alternative
	// (`herald keys new\|hash`: the flag may be either's).
	of [][]string
	// absent: the doc says the command does not exist.
	absent bool
}

var (
	fence    = regexp.MustCompile("^\\s*```\\s*([a-z]*)")
	backtick = regexp.MustCompile("`([^`]+)`")
	// Words that start a herald command line in a shell block.
	heraldWord = regexp.MustCompile(`(^|/)herald$`)
)

// docCommands finds the herald command lines of a markdown document: in
// sh, console and unlabelled code blocks, in indented code, and in inline
// code spans, with a span's alternatives (apply\|info) each a command.
func docCommands(doc string) []docCommand {
	var out []docCommand
	lines := strings.Split(doc, "\n")
	inFence, lang := false, ""
	for i := 0; i < len(lines); i++ {
		line, n := lines[i], i+1
		if m := fence.FindStringSubmatch(line); m != nil {
			inFence, lang = !inFence, m[1]
			continue
		}
		if inFence {
			if lang != "" && lang != "sh" && lang != "console" && lang != "bash" && lang != "shell" {
				continue
			}
			trimmed := strings.TrimSpace(line)
			prompt := strings.HasPrefix(trimmed, "$ ")
			switch {
			case prompt:
				trimmed = strings.TrimPrefix(trimmed, "$ ")
			case lang == "console":
				continue // output
			case lang == "" && !strings.HasPrefix(trimmed, "herald "):
				continue // a diagram or output: only lines that start with herald
			}
			// A line continued with a backslash goes on on the next.
			for strings.HasSuffix(trimmed, "\\") && i+1 < len(lines) {
				i++
				trimmed = strings.TrimSuffix(trimmed, "\\") + " " + strings.TrimSpace(lines[i])
			}
			for _, args := range shellCommands(trimmed) {
				out = append(out, docCommand{line: n, text: trimmed, args: args})
			}
			continue
		}
		if strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			if s := strings.TrimSpace(line); strings.HasPrefix(s, "herald ") || strings.HasPrefix(s, "$ herald ") {
				for _, args := range shellCommands(strings.TrimPrefix(s, "$ ")) {
					out = append(out, docCommand{line: n, text: s, args: args})
				}
				continue
			}
		}
		// Inline code spans may run over a line break: join the
		// paragraph's lines, and name the line each span starts on.
		start := i
		para := line
		for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" && !fence.MatchString(lines[i+1]) &&
			strings.Count(para, "`")%2 == 1 {
			i++
			para += "\n" + lines[i]
		}
		out = append(out, spanCommands(para, start+1)...)
	}
	return out
}

// spanCommands reads the code spans of a paragraph.
func spanCommands(para string, first int) []docCommand {
	var out []docCommand
	var rowCmd [][]string // the last herald command of the current line
	rowLine := 0
	for _, loc := range backtick.FindAllStringSubmatchIndex(para, -1) {
		n := first + strings.Count(para[:loc[0]], "\n")
		if n != rowLine {
			rowCmd, rowLine = nil, n
		}
		span := strings.Join(strings.Fields(para[loc[2]:loc[3]]), " ")
		text := "`" + span + "`"
		words := strings.Fields(strings.NewReplacer("[", " ", "]", " ", `\|`, "|").Replace(span))
		// "There is no `herald bench notifier` command": it must not exist.
		absent := strings.HasSuffix(strings.ToLower(para[:loc[0]]), "there is no ")
		switch {
		case len(words) > 0 && words[0] == "herald":
			for _, args := range alternatives(words[1:]) {
				out = append(out, docCommand{line: n, text: text, args: args, absent: absent})
			}
			rowCmd = alternatives(words[1:])
		case len(words) > 0 && strings.HasPrefix(words[0], "--") && len(words[0]) > 2:
			// A flag alone: --name, --nats URL, --follow=false.
			for _, w := range words {
				if strings.HasPrefix(w, "--") {
					out = append(out, docCommand{line: n, text: text, args: []string{w}, lone: true, of: rowCmd})
				}
			}
		}
	}
	return out
}

// alternatives expands each word with a | into one command per choice.
func alternatives(words []string) [][]string {
	for i, w := range words {
		if !strings.Contains(w, "|") {
			continue
		}
		var out [][]string
		for _, alt := range strings.Split(w, "|") {
			head := append(append([]string{}, words[:i]...), alt)
			for _, rest := range alternatives(words[i+1:]) {
				out = append(out, append(append([]string{}, head...), rest...))
			}
		}
		return out
	}
	return [][]string{words}
}

// shellCommands splits a shell line into simple commands and returns the
// arguments of each that runs herald (herald, ./herald, go run
// ./services/herald), after variable assignments and redirections.
func shellCommands(line string) [][]string {
	var out [][]string
	for _, words := range shellSplit(line) {
		// Optional parts shown in brackets: [--json].
		words = slices.DeleteFunc(words, func(w string) bool { return w == "[" || w == "]" })
		for j, w := range words {
			words[j] = strings.Trim(w, "[]")
		}
		for len(words) > 0 && (strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") ||
			words[0] == "sudo" || words[0] == "exec" || words[0] == "env" || words[0] == "time") {
			words = words[1:]
		}
		switch {
		case len(words) > 0 && heraldWord.MatchString(words[0]):
			out = append(out, words[1:])
		case len(words) > 2 && words[0] == "go" && words[1] == "run" && strings.HasSuffix(words[2], "services/herald"):
			out = append(out, words[3:])
		}
	}
	return out
}

// shellSplit is enough of the shell's word splitting for the docs: quotes,
// backslashes, comments, the operators | || && ; & and redirections (which
// are dropped with their target).
func shellSplit(line string) [][]string {
	var (
		cmds  [][]string
		words []string
		word  strings.Builder
		in    bool // a word is being read
		quote rune
	)
	flush := func() {
		if in {
			words = append(words, word.String())
			word.Reset()
			in = false
		}
	}
	end := func() {
		flush()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			word.WriteRune(rs[i])
			in = true
		case r == '#' && !in:
			end()
			return dropRedirections(cmds)
		case r == ' ' || r == '\t':
			flush()
		case r == '|' || r == ';' || r == '&':
			end()
		case r == '<' || r == '>':
			flush()
			words = append(words, string(r))
		default:
			word.WriteRune(r)
			in = true
		}
	}
	end()
	return dropRedirections(cmds)
}

func dropRedirections(cmds [][]string) [][]string {
	for i, words := range cmds {
		var kept []string
		for j := 0; j < len(words); j++ {
			if words[j] == "<" || words[j] == ">" {
				j++ // and its target
				continue
			}
			kept = append(kept, words[j])
		}
		cmds[i] = kept
	}
	return cmds
}

// checkCommand resolves a doc's command line against the tree: every
// subcommand must exist, and every flag on the command it is given to.
func checkCommand(root *cobra.Command, dc docCommand) error {
	if dc.lone {
		flag := strings.TrimPrefix(strings.SplitN(dc.args[0], "=", 2)[0], "--")
		if dc.of != nil {
			var paths []string
			for _, args := range dc.of {
				cmd, err := resolve(root, args)
				if err != nil {
					return nil // reported with the command itself
				}
				if lookupFlag(cmd, flag) != nil {
					return nil
				}
				paths = append(paths, cmd.CommandPath())
			}
			return fmt.Errorf("%s: unknown flag --%s", strings.Join(paths, ", "), flag)
		}
		found := false
		walk(root, func(c *cobra.Command) { found = found || lookupFlag(c, flag) != nil })
		if !found {
			return fmt.Errorf("no herald command has the flag --%s", flag)
		}
		return nil
	}
	_, err := resolve(root, dc.args)
	if dc.absent {
		if err == nil {
			return errors.New("the doc says there is no such command, but there is")
		}
		return nil
	}
	return err
}

// resolve walks args down the tree as cobra would and checks each flag on
// the command reached so far.
func resolve(root *cobra.Command, args []string) (*cobra.Command, error) {
	cmd, positional := root, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		takesValue := func(f *pflag.Flag) bool {
			// A value is never shown starting with --: [--state --severity]
			// lists flags.
			return f.NoOptDefVal == "" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--")
		}
		switch {
		case a == "--":
			return cmd, nil
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			f := lookupFlag(cmd, name)
			if f == nil {
				return cmd, fmt.Errorf("%s: unknown flag --%s", cmd.CommandPath(), name)
			}
			if !hasValue && takesValue(f) {
				i++
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j, c := range a[1:] {
				f := lookupShorthand(cmd, string(c))
				if f == nil {
					return cmd, fmt.Errorf("%s: unknown flag -%c", cmd.CommandPath(), c)
				}
				if f.NoOptDefVal == "" {
					if j == len(a)-2 && takesValue(f) {
						i++
					}
					break // the rest of the word is its value
				}
			}
		case positional:
		default:
			if sub := findSub(cmd, a); sub != nil {
				cmd = sub
				continue
			}
			// A placeholder (<command>, …) stands for whatever is there.
			if strings.HasPrefix(a, "<") || strings.Trim(a, "….") == "" {
				positional = true
				continue
			}
			if cmd.HasAvailableSubCommands() && !cmd.Runnable() {
				return cmd, fmt.Errorf("%s: unknown command %q", cmd.CommandPath(), a)
			}
			positional = true
		}
	}
	return cmd, nil
}

func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}

func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f
	}
	return cmd.InheritedFlags().Lookup(name)
}

func lookupShorthand(cmd *cobra.Command, s string) *pflag.Flag {
	if f := cmd.Flags().ShorthandLookup(s); f != nil {
		return f
	}
	return cmd.InheritedFlags().ShorthandLookup(s)
}

// The docs cite tests as evidence (TestAStandbyTakesOverMidStorm…): each
// must exist, or the claim has lost its proof. A name used with -run may
// be the prefix of tests.
func TestDocsNameOnlyTestsThatExist(t *testing.T) {
	funcs := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Z]\w*)\(`)
	var have []string
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../.." {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range funcs.FindAllStringSubmatch(string(b), -1) {
				have = append(have, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile(`\b(?:Test|Benchmark|Fuzz)[A-Z]\w*`)
	for _, doc := range readDocs(t) {
		for i, line := range strings.Split(doc.text, "\n") {
			for _, name := range cited.FindAllString(line, -1) {
				if !slices.ContainsFunc(have, func(h string) bool { return strings.HasPrefix(h, name) }) {
					t.Errorf("%s:%d: names %s, which no test is", doc.name, i+1, name)
				}
			}
		}
	}
}

// Paths the docs name in code spans (`pkg/incident/default_rules.yaml`,
// `deploy/nats`, `go test ./pkg/access`) must exist, so that a moved file
// takes its docs along. A path may be a glob; <placeholders> and what
// follows a Go identifier's dot (`pkg/heraldtest.StartDeployCluster`) are
// not checked.
func TestDocsNameOnlyPathsThatExist(t *testing.T) {
	repoPath := regexp.MustCompile(`(?:^|[\s(=])(\./)?((?:pkg|services|docs|deploy|streams|schemas|\.ci)/[^\s:,;)` + "`" + `'"]*)`)
	for _, doc := range readDocs(t) {
		// Code spans outside code blocks, and the lines of shell blocks.
		lines := strings.Split(doc.text, "\n")
		var prose []string
		type found struct {
			line int
			text string
		}
		var texts []found
		inFence, lang := false, ""
		for i, l := range lines {
			if m := fence.FindStringSubmatch(l); m != nil {
				inFence, lang = !inFence, m[1]
				prose = append(prose, "")
				continue
			}
			if inFence {
				if lang == "sh" {
					texts = append(texts, found{i + 1, l})
				}
				prose = append(prose, "")
				continue
			}
			prose = append(prose, l)
		}
		text := strings.Join(prose, "\n")
		for _, loc := range backtick.FindAllStringSubmatchIndex(text, -1) {
			texts = append(texts, found{1 + strings.Count(text[:loc[0]], "\n"), text[loc[2]:loc[3]]})
		}
		for _, f := range texts {
			for _, m := range repoPath.FindAllStringSubmatch(f.text, -1) {
				p := strings.TrimRight(m[2], ".")
				if i := strings.IndexAny(p, "<#{"); i >= 0 {
					p = p[:i]
				}
				if i := strings.LastIndex(p, "."); i > strings.LastIndex(p, "/") && i+1 < len(p) && p[i+1] >= 'A' && p[i+1] <= 'Z' {
					p = p[:i] // a Go identifier in the package
				}
				if !pathExists(filepath.Join("../..", p)) && !pathExists(filepath.Join(filepath.Dir(doc.path), p)) {
					t.Errorf("%s:%d: names %s, which does not exist", doc.name, f.line, m[2])
				}
			}
		}
	}
}

func pathExists(p string) bool {
	m, err := filepath.Glob(p)
	return err == nil && len(m) > 0
}
