package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
)

// publishOptions are herald publish's flags.
type publishOptions struct {
	cf                                   clientFlags
	typ, source, data, id, reqID, causID string
	asJSON                               bool
}

func publishCmd(e *env) *cobra.Command {
	o := &publishOptions{}
	cmd := &cobra.Command{
		Use:   "publish [EVENT_JSON | -]",
		Short: "Publish typed events to the log, validated against their schemas",
		Long: `Publish one or more events to the EVENTS log. An event is given either by flags:

  herald publish --type integration_call_completed --source billing \
    --data '{"integration":"stripe","operation":"charges.create","statusCode":401,"latencyMs":120}'

or as CloudEvents JSON (an object, an array, or JSON lines), as an argument or on
standard input with "-":

  herald publish '{"type":"integration_call_completed","source":"billing","data":{"integration":"stripe","operation":"refunds.create","statusCode":200,"latencyMs":80}}'
  cat events.jsonl | herald publish -

Every event is validated against its schema first: nothing is published if one
is invalid (exit code 2). An event without an id gets a UUIDv7; publishing the
same id again is de-duplicated by JetStream.

It publishes with the producer role's credentials (./data/nats/producer.creds,
or --creds): the types producers own. A type a Herald service owns is refused
(exit 2), as the server would refuse it (docs/security.md).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), e, args) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.typ, "type", "t", "", "event type (see GET /v1/event-types)")
	f.StringVarP(&o.source, "source", "s", "herald-cli", "who produced the event")
	f.StringVarP(&o.data, "data", "d", "", "event data, JSON")
	f.StringVar(&o.id, "id", "", "event id (default: a new UUIDv7)")
	f.StringVar(&o.reqID, "request-id", "", "correlation id")
	f.StringVar(&o.causID, "causation-id", "", "id of the event that caused this one")
	f.BoolVar(&o.asJSON, "json", false, "print acknowledgements as JSON lines")
	o.cf.register(cmd, access.Producer)
	return cmd
}

func (o *publishOptions) run(ctx context.Context, e *env, args []string) error {
	ins, err := o.inputs(e, args)
	if err != nil {
		return err
	}
	b, err := o.cf.connect(ctx)
	if err != nil {
		return err
	}
	defer closeBus(b)
	events, err := b.Catalog.ToEvents(ins)
	if err != nil {
		return asUsage(err)
	}
	if err := mayPublish(o.cf.as, b.Catalog, events); err != nil {
		return err
	}
	acks, err := b.Publish(ctx, events...)
	if err != nil {
		return err
	}
	for _, a := range acks {
		if o.asJSON {
			printJSON(e, a)
			continue
		}
		dup := ""
		if a.Duplicate {
			dup = " (duplicate: already stored)"
		}
		fmt.Fprintf(e.stdout, "published %s id=%s stream=%s seq=%d%s\n", a.Type, a.ID, a.Stream, a.Sequence, dup)
	}
	return nil
}

// inputs are the events to publish: from the flags, the argument, or
// standard input.
func (o *publishOptions) inputs(e *env, args []string) ([]event.Input, error) {
	switch {
	case o.typ != "":
		if len(args) > 0 {
			return nil, usagef("give the event either by flags or as JSON, not both")
		}
		if o.data == "" {
			return nil, usagef("--data is required with --type")
		}
		return []event.Input{{Type: o.typ, Source: o.source, ID: o.id, RequestID: o.reqID, CausationID: o.causID, Data: json.RawMessage(o.data)}}, nil
	case len(args) == 1:
		var r io.Reader = strings.NewReader(args[0])
		if args[0] == "-" {
			r = e.stdin
		}
		return readInputs(r)
	default:
		return nil, usagef("nothing to publish: give --type/--data, an event as JSON, or - to read standard input")
	}
}

// readInputs reads JSON objects, arrays of them, or JSON lines.
func readInputs(r io.Reader) ([]event.Input, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var ins []event.Input
	for n := 0; ; n++ {
		var v json.RawMessage
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, usagef("input value %d is not JSON: %v", n, err)
		}
		batch, err := event.ParseInputs(v)
		if err != nil {
			return nil, asUsage(err)
		}
		ins = append(ins, batch...)
	}
	if len(ins) == 0 {
		return nil, usagef("the input holds no events")
	}
	return ins, nil
}

// asUsage turns a validation error (an input refused, HTTP 4xx) into a
// usage error.
func asUsage(err error) error {
	err = api.FromInput(err)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status < 500 {
		return usagef("%s: %s", ae.Code, ae.Detail)
	}
	return err
}

// mayPublish refuses, before anything is sent, the events the server would
// refuse from these credentials: each type has one owning role.
func mayPublish(r access.Role, cat *event.Catalog, events []*event.Event) error {
	if r == "" {
		return nil // not one of Herald's roles: the server decides
	}
	owner := access.Grants()[r].Owner
	for _, e := range events {
		def, err := cat.Def(e.Type)
		if err != nil {
			return asUsage(err)
		}
		if def.Owner != owner {
			return usagef("%s events are published by the %s role only, and these credentials are %s's", e.Type, def.Owner, r)
		}
	}
	return nil
}
