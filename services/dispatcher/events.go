package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
)

const (
	// maxBatch bounds the events of one POST /v1/events.
	maxBatch = 1000
	// publishTimeout bounds the wait for JetStream's acks.
	publishTimeout = 5 * time.Second
)

// Input is one event as a producer sends it: the CloudEvents JSON format
// (structured mode), with Herald's requestid and causationid extensions.
type Input struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Time            *time.Time      `json:"time"`
	DataSchema      string          `json:"dataschema"`
	DataContentType string          `json:"datacontenttype"`
	RequestID       string          `json:"requestid"`
	CausationID     string          `json:"causationid"`
	Data            json.RawMessage `json:"data"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ParseInputs reads one event or an array of them. Every problem names the
// event's index and the field at fault.
func ParseInputs(body []byte) ([]Input, error) {
	body = bytes.TrimSpace(body)
	var ins []Input
	if len(body) > 0 && body[0] == '[' {
		if err := api.Unmarshal(body, &ins); err != nil {
			return nil, err
		}
		if len(ins) == 0 {
			return nil, api.Errorf(http.StatusBadRequest, "empty_batch", "the array holds no events")
		}
		if len(ins) > maxBatch {
			return nil, api.Errorf(http.StatusRequestEntityTooLarge, "batch_too_large", "%d events in one request; at most %d", len(ins), maxBatch)
		}
		return ins, nil
	}
	var in Input
	if err := api.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	return []Input{in}, nil
}

// ToEvents validates the envelopes and the data against the catalog. Only
// raw facts (the events log) may be published: incidents and the
// notifier's ledger are derived by Herald itself. (POST /v1/events is
// narrower still: producer-owned types only, see checkOwners.)
func ToEvents(cat *event.Catalog, ins []Input) ([]*event.Event, error) {
	out := make([]*event.Event, len(ins))
	for i, in := range ins {
		e, err := toEvent(cat, in)
		if err != nil {
			var ae *api.Error
			if errors.As(err, &ae) {
				if len(ins) > 1 {
					ae.Detail = fmt.Sprintf("event %d: %s", i, ae.Detail)
					if ae.Extra == nil {
						ae.Extra = map[string]any{}
					}
					ae.Extra["index"] = i
				}
				return nil, ae
			}
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func toEvent(cat *event.Catalog, in Input) (*event.Event, error) {
	bad := func(code, format string, args ...any) error {
		return api.Errorf(http.StatusBadRequest, code, format, args...)
	}
	if in.SpecVersion != "" && in.SpecVersion != event.SpecVersion {
		return nil, bad("invalid_envelope", "specversion %q is not supported; use %q", in.SpecVersion, event.SpecVersion)
	}
	if in.Type == "" {
		return nil, bad("invalid_envelope", "type is required")
	}
	def, err := cat.Def(event.Type(in.Type))
	if err != nil {
		return nil, bad("unknown_event_type", "%q is not an event type; GET /v1/event-types lists them", in.Type)
	}
	if def.Log != event.LogEvents {
		return nil, bad("derived_event_type", "%s is derived by Herald (log %s); producers publish raw facts only", in.Type, def.Log)
	}
	if strings.TrimSpace(in.Source) == "" || len(in.Source) > 256 {
		return nil, bad("invalid_envelope", "source is required (up to 256 characters): who produced the event, as a URI reference such as billing")
	}
	if err := checkURIReference(in.Source); err != nil {
		return nil, bad("invalid_envelope", "source %q is not a URI reference (RFC 3986): %v", in.Source, err)
	}
	if in.ID != "" && !idPattern.MatchString(in.ID) {
		return nil, bad("invalid_envelope", "id %q must be 1-128 characters of letters, digits, '.', '_', ':' or '-'", in.ID)
	}
	if in.DataSchema != "" && in.DataSchema != def.SchemaURI {
		return nil, bad("invalid_envelope", "dataschema %q does not match %s (this platform accepts %s)", in.DataSchema, in.Type, def.SchemaURI)
	}
	if in.DataContentType != "" && in.DataContentType != event.ContentType {
		return nil, bad("invalid_envelope", "datacontenttype %q is not supported; data must be %s", in.DataContentType, event.ContentType)
	}
	if len(in.RequestID) > 128 || len(in.CausationID) > 128 {
		return nil, bad("invalid_envelope", "requestid and causationid are at most 128 characters")
	}
	if len(in.Data) == 0 || bytes.Equal(in.Data, []byte("null")) {
		return nil, bad("invalid_envelope", "data is required")
	}
	// Store the data compact: the log holds canonical JSON, whatever the
	// producer's formatting.
	var data bytes.Buffer
	if err := json.Compact(&data, in.Data); err != nil {
		return nil, bad("invalid_json", "data: %v", err)
	}
	e := &event.Event{
		ID: in.ID, Type: def.Type, Source: in.Source, RequestID: in.RequestID, CausationID: in.CausationID, Raw: data.Bytes(),
	}
	if e.ID == "" {
		e.ID = event.NewID()
	}
	if in.Time != nil {
		e.Time = in.Time.UTC()
	} else {
		e.Time = time.Now().UTC()
	}
	if err := cat.Encode(e); err != nil {
		var se *event.SchemaError
		if errors.As(err, &se) {
			return nil, &api.Error{Status: http.StatusBadRequest, Code: "schema_violation", Detail: se.Error(),
				Extra: map[string]any{"violations": se.Violations}}
		}
		return nil, bad("invalid_data", "%v", err)
	}
	return e, nil
}

// checkOwners refuses (403) a type that producers do not own, whatever the
// key and even with no key configured: a fact Herald's services record (an
// OTP verified, a delivery completed) must never be forged over HTTP. Then
// it refuses a type the caller's key is not scoped to.
func checkOwners(ctx context.Context, cat *event.Catalog, ins []Input) error {
	for i, in := range ins {
		def, err := cat.Def(event.Type(in.Type))
		if err != nil {
			continue // ToEvents answers 400 unknown_event_type
		}
		var ae *api.Error
		if def.Owner != event.OwnerProducer {
			ae = api.Errorf(http.StatusForbidden, "forbidden_event_type", "%s is published by Herald's %s only; producers may publish %s",
				in.Type, def.Owner, strings.Join(api.ProducerTypes(cat), ", "))
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
	bus     *bus.Bus
	maxBody int64
}

func (h *eventsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := api.ReadJSONBody(r, h.maxBody)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	ins, err := ParseInputs(body)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if err := checkOwners(r.Context(), h.bus.Catalog, ins); err != nil {
		api.WriteError(w, err)
		return
	}
	events, err := ToEvents(h.bus.Catalog, ins)
	if err != nil {
		api.WriteError(w, err)
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

// typesHandler serves GET /v1/event-types and GET /v1/event-types/{type}.
type typesHandler struct{ cat *event.Catalog }

type typeInfo struct {
	Type        string `json:"type"`
	Version     int    `json:"version"`
	Log         string `json:"log"`
	Schema      string `json:"schema"`
	Description string `json:"description"`
}

func (h *typesHandler) list(w http.ResponseWriter, _ *http.Request) {
	var out []typeInfo
	for _, d := range h.cat.Defs() {
		out = append(out, typeInfo{string(d.Type), d.Version, string(d.Log), d.SchemaURI, d.Description})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"types": out})
}

func (h *typesHandler) schema(w http.ResponseWriter, r *http.Request) {
	d, err := h.cat.Def(event.Type(r.PathValue("type")))
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "unknown_event_type", "%q is not an event type", r.PathValue("type")))
		return
	}
	w.Header().Set("Content-Type", "application/schema+json")
	_, _ = w.Write(d.Schema())
}
