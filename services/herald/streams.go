package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/streams"
)

func streamsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "Apply and inspect Herald's JetStream streams",
		Long: `Herald's streams (EVENTS, INCIDENTS, NOTIFICATIONS, DLQ) and key-value buckets are
data, embedded in the binary (see streams/*.yaml). herald serve applies them at
start; "herald streams apply" does the same against any server, idempotently.`,
	}
	cmd.AddCommand(streamsApplyCmd(e), streamsInfoCmd(e))
	return cmd
}

func streamsApplyCmd(e *env) *cobra.Command {
	var (
		cf         clientFlags
		configFile string
		replicas   int
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Create or update every stream and bucket (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := config.Load(configFile)
			if err != nil {
				return err
			}
			sc := streams.DefaultConfig()
			if err := f.Section("streams", &sc); err != nil {
				return err
			}
			if cmd.Flags().Changed("replicas") {
				sc.Replicas = replicas
				if err := sc.Validate(); err != nil {
					return usagef("--replicas: %v", err)
				}
			}
			defs, err := streams.Load(sc, extraStreamDefs()...)
			if err != nil {
				return err
			}
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			results, err := streams.Apply(cmd.Context(), b.JS, defs, sc.Replicas)
			for _, r := range results {
				if asJSON {
					printJSON(e, r)
					continue
				}
				fmt.Fprintf(e.stdout, "%-6s %-14s %s\n", r.Kind, r.Name, r.Action)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file whose streams section (replicas, retention overrides) applies")
	cmd.Flags().IntVar(&replicas, "replicas", 1, "replicas per stream (1 embedded, 3 on a cluster)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per stream or bucket: kind, name, action")
	cf.register(cmd, access.OperatorAdmin)
	return cmd
}

// streamInfo is one line of herald streams info --json.
type streamInfo struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Missing   bool     `json:"missing,omitempty"`
	Subjects  []string `json:"subjects,omitempty"`
	Messages  uint64   `json:"messages"`
	Bytes     uint64   `json:"bytes"`
	FirstSeq  uint64   `json:"firstSeq"`
	LastSeq   uint64   `json:"lastSeq"`
	Consumers int      `json:"consumers"`
	Replicas  int      `json:"replicas"`
	// MaxAge is a Go duration; "" keeps messages forever.
	MaxAge string `json:"maxAge,omitempty"`
}

func streamsInfoCmd(e *env) *cobra.Command {
	var (
		cf     clientFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "info [NAME]",
		Short: "Show the streams: subjects, messages, bytes, sequences, consumers",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			defs, err := streams.Load(streams.DefaultConfig(), extraStreamDefs()...)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(w, "NAME\tKIND\tSUBJECTS\tMESSAGES\tBYTES\tFIRST\tLAST\tCONSUMERS\tREPLICAS\tMAX AGE")
			}
			found := false
			for _, d := range defs {
				if len(args) == 1 && !strings.EqualFold(args[0], d.Name) {
					continue
				}
				found = true
				name := d.Name
				if d.Kind == "kv" {
					name = "KV_" + d.Name
				}
				si, err := readStreamInfo(cmd.Context(), b.JS, d.Name, name, d.Kind)
				if err != nil {
					return err
				}
				switch {
				case asJSON:
					printJSON(e, si)
				case si.Missing:
					fmt.Fprintf(w, "%s\t%s\t(missing: run herald streams apply)\t\t\t\t\t\t\t\n", d.Name, d.Kind)
				default:
					age := "forever"
					if si.MaxAge != "" {
						age = si.MaxAge
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", si.Name, si.Kind, strings.Join(si.Subjects, ","),
						si.Messages, humanBytes(si.Bytes), si.FirstSeq, si.LastSeq, si.Consumers, si.Replicas, age)
				}
			}
			if !found {
				return usagef("no stream named %q", args[0])
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per stream or bucket")
	cf.register(cmd, access.OperatorRead)
	return cmd
}

// readStreamInfo reads one stream's state (name is the JetStream name:
// KV_<bucket> for a bucket); a stream not applied yet is Missing.
func readStreamInfo(ctx context.Context, js jetstream.JetStream, def, name, kind string) (streamInfo, error) {
	si := streamInfo{Name: def, Kind: kind}
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		si.Missing = true
		return si, nil
	}
	if err != nil {
		return si, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return si, err
	}
	st, c := info.State, info.Config
	si.Subjects, si.Messages, si.Bytes, si.FirstSeq, si.LastSeq = c.Subjects, st.Msgs, st.Bytes, st.FirstSeq, st.LastSeq
	si.Consumers, si.Replicas = st.Consumers, c.Replicas
	if c.MaxAge > 0 {
		si.MaxAge = c.MaxAge.Round(time.Second).String()
	}
	return si, nil
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func extraStreamDefs() []fs.FS { return app.ServiceStreamDefs() }
