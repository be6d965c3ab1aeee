package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/streams"
)

func dlqCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and clear dead letters",
		Long: `Dead letters are the messages a consumer could not decode, validate or handle,
kept in the DLQ stream with the original subject, headers and body and the reason
(see docs/operations.md). A producer's invalid event is fixed at the producer and
published again; "herald dlq show SEQ --data" prints the original data to start from.`,
	}
	cmd.AddCommand(dlqListCmd(e), dlqShowCmd(e), dlqPurgeCmd(e))
	return cmd
}

func dlqListCmd(e *env) *cobra.Command {
	var (
		cf               clientFlags
		consumer, reason string
		asJSON           bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			filter := "dlq.>"
			if consumer != "" {
				filter = "dlq.*." + consumer + ".*"
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(w, "SEQ\tSTORED\tCONSUMER\tORIGIN\tTYPE\tREASON\tERROR")
			}
			err = b.Scan(cmd.Context(), streams.DLQ, bus.ScanOptions{Consumer: jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}},
				func(m jetstream.Msg, pos bus.Position) error {
					d := bus.ReadDeadLetter(pos, m.Headers(), m.Data())
					if reason != "" && d.Reason != reason {
						return nil
					}
					if asJSON {
						printJSON(e, d)
					} else {
						fmt.Fprintf(w, "%d\t%s\t%s\t%s#%s\t%s\t%s\t%s\n", d.Seq, d.Stored.Format(time.RFC3339), d.Consumer,
							d.Stream, d.Sequence, orDash(d.Type), d.Reason, truncate(d.Error, 80))
					}
					return nil
				})
			if err != nil {
				return err
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&consumer, "consumer", "", "only this consumer's dead letters")
	cmd.Flags().StringVar(&reason, "reason", "", "only this reason (envelope, unknown_type, malformed, schema, subject, handler, exhausted)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line, with headers and data")
	cf.register(cmd, access.OperatorRead)
	return cmd
}

func dlqShowCmd(e *env) *cobra.Command {
	var (
		cf       clientFlags
		dataOnly bool
	)
	cmd := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one dead letter with its headers and data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return usagef("SEQ %q is not a DLQ sequence number", args[0])
			}
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			s, err := b.JS.Stream(cmd.Context(), streams.DLQ)
			if err != nil {
				return err
			}
			m, err := s.GetMsg(cmd.Context(), seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return usagef("no dead letter %d", seq)
			}
			if err != nil {
				return err
			}
			d := bus.ReadDeadLetter(bus.Position{Seq: m.Sequence, Stored: m.Time.UnixNano()}, m.Header, m.Data)
			if dataOnly {
				fmt.Fprintln(e.stdout, string(d.Data))
				return nil
			}
			out, _ := json.MarshalIndent(d, "", "  ")
			fmt.Fprintln(e.stdout, string(out))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dataOnly, "data", false, "print only the original data")
	cf.register(cmd, access.OperatorRead)
	return cmd
}

func dlqPurgeCmd(e *env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "purge SEQ...",
		Short: "Delete dead letters that have been dealt with",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var seqs []uint64
			for _, a := range args {
				seq, err := strconv.ParseUint(a, 10, 64)
				if err != nil {
					return usagef("SEQ %q is not a DLQ sequence number", a)
				}
				seqs = append(seqs, seq)
			}
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			s, err := b.JS.Stream(cmd.Context(), streams.DLQ)
			if err != nil {
				return err
			}
			var missing []string
			for _, seq := range seqs {
				err := s.DeleteMsg(cmd.Context(), seq)
				switch {
				case errors.Is(err, jetstream.ErrMsgNotFound) || isNotFound(err):
					missing = append(missing, strconv.FormatUint(seq, 10))
				case err != nil:
					return err
				default:
					fmt.Fprintf(e.stdout, "purged %d\n", seq)
				}
			}
			if len(missing) > 0 {
				return usagef("no dead letter %s", strings.Join(missing, ", "))
			}
			return nil
		},
	}
	cf.register(cmd, access.OperatorAdmin)
	return cmd
}

func isNotFound(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMessageNotFound
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate cuts s to at most n bytes, on a rune boundary, ending in "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 1
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
