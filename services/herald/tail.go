package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

func tailCmd(e *env) *cobra.Command {
	var (
		cf        clientFlags
		stream    string
		types     []string
		subjects  []string
		requestID string
		all       bool
		since     time.Duration
		seq       uint64
		follow    bool
		asJSON    bool
		limit     int
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow the event log, or read it from the start",
		Long: `Print events as they are appended to a stream (EVENTS by default), or read it
from the start (--all), a time (--since) or a sequence (--seq). Filter by event
type (--type, repeatable), by subject (--subject, NATS wildcards) or by the
correlation id of one request (--request-id) to follow it end to end:

  herald tail --all --follow=false --request-id 0193f1d2-…

Lines are human-readable; --json prints one CloudEvents JSON object per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			starts := 0
			for _, set := range []bool{all, since > 0, seq > 0} {
				if set {
					starts++
				}
			}
			if starts > 1 {
				return usagef("--all, --since and --seq are exclusive")
			}
			cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
			switch {
			case all:
				cfg.DeliverPolicy = jetstream.DeliverAllPolicy
			case since > 0:
				t := time.Now().Add(-since)
				cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
			case seq > 0:
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq
			}
			prefix := strings.ToLower(stream) + "."
			for _, t := range types {
				cfg.FilterSubjects = append(cfg.FilterSubjects, prefix+t+".>", prefix+t)
			}
			cfg.FilterSubjects = append(cfg.FilterSubjects, subjects...)
			b, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeBus(b)
			for _, t := range types {
				if _, err := b.Catalog.Def(event.Type(t)); err != nil {
					return usagef("--type: %v", err)
				}
			}
			if _, err := b.JS.Stream(cmd.Context(), stream); err != nil {
				if errors.Is(err, jetstream.ErrStreamNotFound) {
					return usagef("no stream %q (streams: %s, %s, %s, %s)", stream, streams.Events, streams.Incidents, streams.Notifications, streams.DLQ)
				}
				return err
			}
			printed := 0
			errDone := errors.New("limit reached")
			err = b.Scan(cmd.Context(), stream, bus.ScanOptions{Consumer: cfg, Follow: follow}, func(m jetstream.Msg, pos bus.Position) error {
				if requestID != "" && m.Headers().Get(event.HeaderRequestID) != requestID {
					return nil
				}
				printMsg(e, b, stream, m, pos, asJSON)
				printed++
				if limit > 0 && printed >= limit {
					return errDone
				}
				return nil
			})
			if errors.Is(err, errDone) || cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&stream, "stream", streams.Events, "stream to read: EVENTS, INCIDENTS, NOTIFICATIONS or DLQ")
	f.StringSliceVarP(&types, "type", "t", nil, "only these event types (repeatable)")
	f.StringSliceVar(&subjects, "subject", nil, "only these subjects (NATS wildcards; repeatable)")
	f.StringVar(&requestID, "request-id", "", "only the events of this request (correlation id)")
	f.BoolVar(&all, "all", false, "start at the beginning of the stream")
	f.DurationVar(&since, "since", 0, "start this long ago (e.g. 15m)")
	f.Uint64Var(&seq, "seq", 0, "start at this stream sequence")
	f.BoolVarP(&follow, "follow", "f", true, "keep waiting for new events (--follow=false stops once caught up)")
	f.BoolVar(&asJSON, "json", false, "one JSON object per line")
	f.IntVarP(&limit, "limit", "n", 0, "stop after this many events")
	cf.register(cmd, access.OperatorRead)
	return cmd
}

// Line is one message as herald tail --json prints it: the CloudEvents
// JSON format plus where the event sits in the log.
type Line struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Source      string          `json:"source"`
	Time        string          `json:"time"`
	DataSchema  string          `json:"dataschema,omitempty"`
	RequestID   string          `json:"requestid,omitempty"`
	CausationID string          `json:"causationid,omitempty"`
	Stream      string          `json:"stream"`
	Seq         uint64          `json:"seq"`
	Subject     string          `json:"subject"`
	Stored      time.Time       `json:"stored"`
	Invalid     string          `json:"invalid,omitempty"`
	DeadLetter  map[string]any  `json:"deadLetter,omitempty"`
	Data        json.RawMessage `json:"data"`
}

func printMsg(e *env, b *bus.Bus, stream string, m jetstream.Msg, pos bus.Position, asJSON bool) {
	h := m.Headers()
	l := Line{
		SpecVersion: h.Get(event.HeaderSpecVersion), ID: h.Get(event.HeaderID), Type: h.Get(event.HeaderType),
		Source: h.Get(event.HeaderSource), Time: h.Get(event.HeaderTime), DataSchema: h.Get(event.HeaderDataSchema),
		RequestID: h.Get(event.HeaderRequestID), CausationID: h.Get(event.HeaderCausationID),
		Stream: stream, Seq: pos.Seq, Subject: m.Subject(), Stored: pos.StoredAt(),
	}
	if json.Valid(m.Data()) {
		l.Data = m.Data()
	} else {
		l.Data, _ = json.Marshal(string(m.Data()))
	}
	if r := h.Get(bus.HeaderDLQReason); r != "" {
		l.DeadLetter = map[string]any{
			"reason": r, "error": h.Get(bus.HeaderDLQError), "stream": h.Get(bus.HeaderDLQStream), "subject": h.Get(bus.HeaderDLQSubject),
			"seq": h.Get(bus.HeaderDLQSequence), "consumer": h.Get(bus.HeaderDLQConsumer),
		}
	} else if ev, err := event.FromMsg(m.Subject(), h, m.Data()); err != nil {
		l.Invalid = err.Error()
	} else if err := b.Catalog.Decode(ev); err != nil {
		l.Invalid = err.Error()
	}
	if asJSON {
		out, _ := json.Marshal(l)
		fmt.Fprintln(e.stdout, string(out))
		return
	}
	ts := l.Time
	if ts == "" {
		ts = l.Stored.Format(time.RFC3339Nano)
	}
	typ := l.Type
	if typ == "" {
		typ = "(no type)"
	}
	fmt.Fprintf(e.stdout, "%s  %s#%d  %s", ts, strings.ToLower(l.Stream), l.Seq, typ)
	if l.RequestID != "" {
		fmt.Fprintf(e.stdout, "  req=%s", l.RequestID)
	}
	if l.Source != "" {
		fmt.Fprintf(e.stdout, "  src=%s", l.Source)
	}
	if l.DeadLetter != nil {
		fmt.Fprintf(e.stdout, "  DEAD LETTER %s/%s#%s by %s: %s: %s", l.DeadLetter["stream"], l.DeadLetter["subject"], l.DeadLetter["seq"],
			l.DeadLetter["consumer"], l.DeadLetter["reason"], l.DeadLetter["error"])
	}
	if l.Invalid != "" {
		fmt.Fprintf(e.stdout, "  INVALID: %s", l.Invalid)
	}
	fmt.Fprintf(e.stdout, "  %s\n", l.Data)
}
