package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/classify"
	"github.com/heraldhq/herald/pkg/event"
)

// checkOwners refuses (403) a type that producers do not own, whatever the
// key and even with no key configured: a fact Herald's services record (an
// OTP verified, a delivery completed) must never be forged over HTTP. Then
// it refuses a type the caller's key is not scoped to.
func checkOwners(ctx context.Context, cat *event.Catalog, ins []event.Input) error {
	for i, in := range ins {
		def, err := cat.Def(event.Type(in.Type))
		if err != nil {
			continue // Catalog.ToEvents answers 400 unknown_event_type
		}
		var ae *api.Error
		if ie := cat.ProducerMay(def.Type); ie != nil {
			ae = api.Errorf(http.StatusForbidden, ie.Code, "%s", ie.Detail)
		} else if err := api.AllowType(ctx, def.Type); err != nil && !errors.As(err, &ae) {
			return err
		}
		if ae == nil {
			continue
		}
		if len(ins) > 1 {
			ae.Detail = fmt.Sprintf("event %d: %s", i, ae.Detail)
			ae.Extra = map[string]any{"index": i}
		}
		return ae
	}
	return nil
}

// eventsHandler serves POST /v1/events.
type eventsHandler struct {
	bus      *bus.Bus
	classify *classify.Classifier
	maxBody  int64
}

func (h *eventsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := api.ReadJSONBody(r, h.maxBody)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	ins, err := parseRequest(r, body)
	if err != nil {
		api.WriteError(w, api.FromInput(err))
		return
	}
	if err := checkOwners(r.Context(), h.bus.Catalog, ins); err != nil {
		api.WriteError(w, err)
		return
	}
	events, err := h.bus.Catalog.ToEvents(ins)
	if err != nil {
		api.WriteError(w, api.FromInput(err))
		return
	}
	if err := h.classify.Events(h.bus.Catalog, events...); err != nil {
		api.WriteError(w, err) // the classified data failed its schema: a rule's fault, 500
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	acks, err := h.bus.Publish(ctx, events...)
	if err != nil {
		ids := make([]string, len(events))
		for i, e := range events {
			ids[i] = e.ID
		}
		api.WriteError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Detail: fmt.Sprintf("the event log did not confirm the events (%v); send them again with these ids, it is safe", err),
			Extra:  map[string]any{"ids": ids}})
		return
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"events": acks})
}

// parseRequest reads the events of a request in either content mode of the
// CloudEvents HTTP binding: structured (a JSON event, or an array:
// application/json, application/cloudevents+json,
// application/cloudevents-batch+json) or binary (ce-* headers, the data
// as the body), which a ce-specversion header announces.
func parseRequest(r *http.Request, body []byte) ([]event.Input, error) {
	if r.Header.Get("ce-specversion") == "" {
		return event.ParseInputs(body)
	}
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	in, err := event.ParseBinary(names, r.Header.Get, r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	return []event.Input{in}, nil
}
