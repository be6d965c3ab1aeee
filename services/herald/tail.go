package main

import (
	"context"
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

// tailOptions are herald tail's flags.
type tailOptions struct {
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
}

func tailCmd(e *env) *cobra.Command {
	o := &tailOptions{}
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print a stream's events (-f: and follow it)",
		Long: `Print the events of a stream (EVENTS by default) and exit once caught up, as
tail does: from the start, or from a time (--since) or a sequence (--seq).
With -f (--follow) it keeps printing events as they are appended, from now on
unless --all, --since or --seq says where to start (kubectl logs -f, tail -f).
Filter by event type (--type, repeatable), by subject (--subject, NATS
wildcards) or by the correlation id of one request (--request-id) to see it
end to end:

  herald tail --request-id 0193f1d2-…
  herald tail -f --type otp_delivery_completed

Lines are human-readable; --json prints one CloudEvents JSON object per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), e) },
	}
	f := cmd.Flags()
	f.StringVar(&o.stream, "stream", streams.Events, "stream to read: EVENTS, INCIDENTS, NOTIFICATIONS or DLQ")
	f.StringSliceVarP(&o.types, "type", "t", nil, "only these event types (repeatable)")
	f.StringSliceVar(&o.subjects, "subject", nil, "only these subjects (NATS wildcards; repeatable)")
	f.StringVar(&o.requestID, "request-id", "", "only the events of this request (correlation id)")
	f.BoolVar(&o.all, "all", false, "start at the beginning of the stream (the default without -f)")
	f.DurationVar(&o.since, "since", 0, "start this long ago (e.g. 15m)")
	f.Uint64Var(&o.seq, "seq", 0, "start at this stream sequence")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new events (from now on, unless --all, --since or --seq)")
	f.BoolVar(&o.asJSON, "json", false, "one JSON object per line")
	f.IntVarP(&o.limit, "limit", "n", 0, "stop after this many events")
	o.cf.register(cmd, access.OperatorRead)
	return cmd
}

func (o *tailOptions) run(ctx context.Context, e *env) error {
	cfg, err := o.consumer(time.Now())
	if err != nil {
		return err
	}
	b, err := o.cf.connect(ctx)
	if err != nil {
		return err
	}
	defer closeBus(b)
	if err := o.check(ctx, b); err != nil {
		return err
	}
	printed := 0
	errDone := errors.New("limit reached")
	err = b.Scan(ctx, o.stream, bus.ScanOptions{Consumer: cfg, Follow: o.follow}, func(m jetstream.Msg, pos bus.Position) error {
		if o.requestID != "" && event.HeaderValue(m.Headers(), event.HeaderRequestID) != o.requestID {
			return nil
		}
		printMsg(e, b, o.stream, m, pos, o.asJSON)
		printed++
		if o.limit > 0 && printed >= o.limit {
			return errDone
		}
		return nil
	})
	if errors.Is(err, errDone) || ctx.Err() != nil {
		return nil
	}
	return err
}

// consumer is the ordered consumer the flags ask for: its start and its
// subjects.
func (o *tailOptions) consumer(now time.Time) (jetstream.OrderedConsumerConfig, error) {
	starts := 0
	for _, set := range []bool{o.all, o.since > 0, o.seq > 0} {
		if set {
			starts++
		}
	}
	// Without a start, tail prints what is there; tail -f what comes.
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if o.follow {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	if starts > 1 {
		return cfg, usagef("--all, --since and --seq are exclusive")
	}
	switch {
	case o.all:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case o.since > 0:
		t := now.Add(-o.since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	case o.seq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.seq
	}
	prefix := strings.ToLower(o.stream) + "."
	for _, t := range o.types {
		cfg.FilterSubjects = append(cfg.FilterSubjects, prefix+t+".>", prefix+t)
	}
	cfg.FilterSubjects = append(cfg.FilterSubjects, o.subjects...)
	return cfg, nil
}

// check refuses an unknown event type or stream, as a usage error.
func (o *tailOptions) check(ctx context.Context, b *bus.Bus) error {
	for _, t := range o.types {
		if _, err := b.Catalog.Def(event.Type(t)); err != nil {
			return usagef("--type: %v", err)
		}
	}
	if _, err := b.JS.Stream(ctx, o.stream); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return usagef("no stream %q (streams: %s, %s, %s, %s)", o.stream, streams.Events, streams.Incidents, streams.Notifications, streams.DLQ)
		}
		return err
	}
	return nil
}

// Line is one message as herald tail --json prints it: the CloudEvents
// JSON format plus where the event sits in the log.
type Line struct {
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	Type        string `json:"type"`
	Source      string `json:"source"`
	Time        string `json:"time"`
	DataSchema  string `json:"dataschema,omitempty"`
	// DataContentType is the event's ce-datacontenttype (application/json
	// for every event Herald stores).
	DataContentType string    `json:"datacontenttype,omitempty"`
	RequestID       string    `json:"requestid,omitempty"`
	CausationID     string    `json:"causationid,omitempty"`
	Stream          string    `json:"stream"`
	Seq             uint64    `json:"seq"`
	Subject         string    `json:"subject"`
	Stored          time.Time `json:"stored"`
	Invalid         string    `json:"invalid,omitempty"`
	// A dead letter's details, as extension attributes (lower-case
	// alphanumeric names, string values, as CloudEvents requires): why,
	// the error, and where the original was (stream, subject, sequence,
	// consumer).
	DLQReason   string          `json:"dlqreason,omitempty"`
	DLQError    string          `json:"dlqerror,omitempty"`
	DLQStream   string          `json:"dlqstream,omitempty"`
	DLQSubject  string          `json:"dlqsubject,omitempty"`
	DLQSeq      string          `json:"dlqseq,omitempty"`
	DLQConsumer string          `json:"dlqconsumer,omitempty"`
	Data        json.RawMessage `json:"data"`
}

func printMsg(e *env, b *bus.Bus, stream string, m jetstream.Msg, pos bus.Position, asJSON bool) {
	h := m.Headers()
	l := Line{
		SpecVersion: event.HeaderValue(h, event.HeaderSpecVersion), ID: event.HeaderValue(h, event.HeaderID), Type: event.HeaderValue(h, event.HeaderType),
		Source: event.HeaderValue(h, event.HeaderSource), Time: event.HeaderValue(h, event.HeaderTime), DataSchema: event.HeaderValue(h, event.HeaderDataSchema),
		DataContentType: event.HeaderValue(h, event.HeaderDataContentType),
		RequestID:       event.HeaderValue(h, event.HeaderRequestID), CausationID: event.HeaderValue(h, event.HeaderCausationID),
		Stream: stream, Seq: pos.Seq, Subject: m.Subject(), Stored: pos.StoredAt(),
	}
	if json.Valid(m.Data()) {
		l.Data = m.Data()
	} else {
		l.Data, _ = json.Marshal(string(m.Data()))
	}
	if l.DataContentType == "" {
		l.DataContentType = event.ContentType // stored before ce-datacontenttype was written
	}
	if r := h.Get(bus.HeaderDLQReason); r != "" {
		l.DLQReason, l.DLQError, l.DLQStream = r, h.Get(bus.HeaderDLQError), h.Get(bus.HeaderDLQStream)
		l.DLQSubject, l.DLQSeq, l.DLQConsumer = h.Get(bus.HeaderDLQSubject), h.Get(bus.HeaderDLQSequence), h.Get(bus.HeaderDLQConsumer)
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
	if l.DLQReason != "" {
		fmt.Fprintf(e.stdout, "  DEAD LETTER %s/%s#%s by %s: %s: %s", l.DLQStream, l.DLQSubject, l.DLQSeq, l.DLQConsumer, l.DLQReason, l.DLQError)
	}
	if l.Invalid != "" {
		fmt.Fprintf(e.stdout, "  INVALID: %s", l.Invalid)
	}
	fmt.Fprintf(e.stdout, "  %s\n", shorten(string(l.Data), maxHumanData))
}

// maxHumanData bounds the data a human line shows (the first
// incident_rules_loaded is over 3 KB); --json prints all of it.
const maxHumanData = 240

// shorten cuts s to n bytes (truncate), saying how long it was.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s (%d bytes, --json shows all)", truncate(s, n), len(s))
}
