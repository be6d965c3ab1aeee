package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/services/notifier"
)

// The silences commands go through the notifier's API, as `incidents
// rebuild` goes through the incident service's: the notifier owns the
// silence events, checks them and writes them, and the operator key
// guards them.

// apiFlags are the flags of a command that calls the HTTP API.
type apiFlags struct{ url, key string }

func (f *apiFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "url", "http://127.0.0.1:8080", "the HTTP address of herald serve")
	// The environment is read when the command runs, not as the flag's
	// default: --help would print the key.
	cmd.Flags().StringVar(&f.key, "key", "", "the operator API key, when the server has keys (default: env HERALD_OPERATOR_KEY)")
}

// call sends a request and decodes a 2xx answer into out; other answers
// are errors naming the API's error code (401/403: a usage error).
func (f *apiFlags) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(f.url, "/")+path, rd)
	if err != nil {
		return usagef("--url: %v", err)
	}
	req.Header.Set("User-Agent", notifier.SilencesCLIAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	key := f.key
	if key == "" {
		key = os.Getenv("HERALD_OPERATOR_KEY")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var ans struct{ Error, Detail string }
		_ = json.Unmarshal(data, &ans)
		err := fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, ans.Error, ans.Detail)
		switch {
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return usageError{fmt.Errorf("%w (give the operator key with --key or HERALD_OPERATOR_KEY)", err)}
		case resp.StatusCode/100 == 4:
			return usageError{err}
		}
		return err
	}
	return json.Unmarshal(data, out)
}

func silencesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "silences",
		Short: "Create, list and expire silences and maintenance windows (through the notifier's API)",
		Long: `A silence holds the notifications of the incidents its matchers select
(rule, app, provider, route, integration, severity; name=value, or
name=~regex), from a start to an end or in a weekly window. The incidents
still open, escalate and resolve; what is held is recorded as suppressed,
and the incidents still open when the window ends are announced then.`,
	}
	cmd.AddCommand(silencesAddCmd(e), silencesListCmd(e), silencesExpireCmd(e))
	return cmd
}

// silencesAddCmd is long only in its flags' declarations.
func silencesAddCmd(e *env) *cobra.Command {
	var (
		af                        apiFlags
		req                       notifier.SilenceRequest
		from, until, dur          string
		days, at, lasting, tz, by string
	)
	cmd := &cobra.Command{
		Use:   "add MATCHER...",
		Short: "Silence the incidents every matcher selects, e.g. herald silences add provider=fast2sms --for 2h",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := notifier.ParseMatchers(args)
			if err != nil {
				return usagef("%v", err)
			}
			req.Matchers, req.Duration, req.CreatedBy = ms, dur, by
			if req.CreatedBy == "" {
				req.CreatedBy = os.Getenv("USER")
			}
			for _, t := range []struct {
				flag, v string
				to      *time.Time
			}{{"--from", from, &req.StartsAt}, {"--until", until, &req.EndsAt}} {
				if t.v == "" {
					continue
				}
				if *t.to, err = time.Parse(time.RFC3339, t.v); err != nil {
					return usagef("%s: %q is not an RFC 3339 time (2026-11-22T22:00:00Z)", t.flag, t.v)
				}
			}
			if days != "" {
				req.Recurring = &event.RecurringWindow{Days: strings.Split(days, ","), Start: at, Duration: lasting, TimeZone: tz}
			}
			var ans struct{ Silence notifier.Silence }
			if err := af.call(cmd.Context(), http.MethodPost, "/v1/silences", req, &ans); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s  %s  %s\n", ans.Silence.ID, ans.Silence.Status, notifier.MatcherString(ans.Silence.Matchers))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dur, "for", "", "how long, from the start (2h, 90m)")
	fl.StringVar(&from, "from", "", "start, RFC 3339 (default: now)")
	fl.StringVar(&until, "until", "", "end, RFC 3339 (instead of --for)")
	fl.StringVar(&days, "every", "", "a weekly window: the days it starts on (mon,tue,…,sun)")
	fl.StringVar(&at, "at", "", "with --every: the time of day it starts, HH:MM")
	fl.StringVar(&lasting, "lasting", "", "with --every: how long each window lasts (2h)")
	fl.StringVar(&tz, "tz", "UTC", "with --every: the time zone of --at (Europe/Berlin)")
	fl.StringVar(&by, "by", "", "who creates it (default: env USER)")
	fl.StringVar(&req.Comment, "comment", "", "why")
	af.register(cmd)
	return cmd
}

func silencesListCmd(e *env) *cobra.Command {
	var (
		af     apiFlags
		all    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the silences (pending and active; --all: expired too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/v1/silences"
			if all {
				path += "?all=true"
			}
			var ans struct{ Silences []notifier.Silence }
			if err := af.call(cmd.Context(), http.MethodGet, path, nil, &ans); err != nil {
				return err
			}
			if asJSON {
				for _, s := range ans.Silences {
					b, _ := json.Marshal(s)
					fmt.Fprintln(e.stdout, string(b))
				}
				return nil
			}
			if len(ans.Silences) == 0 {
				fmt.Fprintln(e.stdout, "no silences")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tMATCHERS\tSTARTS\tENDS\tWINDOW\tHELD\tBY\tCOMMENT")
			for _, s := range ans.Silences {
				window, ends := "-", "-"
				if r := s.Recurring; r != nil {
					window = fmt.Sprintf("%s %s +%s %s", strings.Join(r.Days, ","), r.Start, r.Duration, r.TimeZone)
				}
				if !s.EndsAt.IsZero() {
					ends = s.EndsAt.Format(time.RFC3339)
				}
				if !s.ExpiredAt.IsZero() {
					ends = s.ExpiredAt.Format(time.RFC3339) + " (expired)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Status, notifier.MatcherString(s.Matchers),
					s.StartsAt.Format(time.RFC3339), ends, window, s.Suppressed, s.CreatedBy, s.Comment)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "expired silences too")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	af.register(cmd)
	return cmd
}

func silencesExpireCmd(e *env) *cobra.Command {
	var (
		af apiFlags
		by string
	)
	cmd := &cobra.Command{
		Use:   "expire ID",
		Short: "End a silence now; the incidents it held that are still open are announced",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by == "" {
				by = os.Getenv("USER")
			}
			q := ""
			if by != "" {
				q = "?by=" + url.QueryEscape(by)
			}
			var ans struct{ Silence notifier.Silence }
			if err := af.call(cmd.Context(), http.MethodDelete, "/v1/silences/"+url.PathEscape(args[0])+q, nil, &ans); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s  expired\n", ans.Silence.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who ends it (default: env USER)")
	af.register(cmd)
	return cmd
}
