// Command herald runs the Herald platform (herald serve) and operates it
// (publish, tail, streams, …). Run herald --help for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/version"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the work failed: server unavailable, I/O error, …
	exitUsage   = 2 // bad flags, arguments, input or configuration
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError marks an error caused by the caller's input.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// env carries the process's streams to the commands.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(&env{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "herald:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, config.ErrInvalid) || isCobraUsage(err) {
		return exitUsage
	}
	return exitFailure
}

// newRoot builds the command tree (docs_test.go checks the docs against it).
func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "herald",
		Short: "Herald delivers OTPs by SMS and raises incidents in Slack, on an event log in NATS JetStream",
		Long: `Herald delivers one-time passwords by SMS through several providers and raises
incidents in Slack when delivery or any third-party integration fails, and again
when it recovers. Every fact is an event in NATS JetStream.

Start the whole platform with an embedded JetStream server:

  herald serve

Exit codes: 0 success, 1 failure (e.g. the server is unavailable),
2 bad usage, input or configuration.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Read().String(),
	}
	// --version prints the line herald version prints.
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nrun '%s --help' for usage", err, c.CommandPath())}
	})
	root.AddCommand(serveCmd(e), publishCmd(e), tailCmd(e), streamsCmd(e), dlqCmd(e), benchCmd(e), replayCmd(e))
	root.AddCommand(rulesCmd(e), incidentsCmd(e), silencesCmd(e), simulatorCmd(e), keysCmd(e), natsCmd(e), traceCmd(e), versionCmd(e))
	return root
}

// isCobraUsage recognises cobra's own argument errors (unknown command, wrong arg count).
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
