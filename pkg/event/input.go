package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// MaxBatch bounds the events of one batch a producer sends.
const MaxBatch = 1000

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

// InputError is why a producer's input was refused: a stable code, a detail
// for people, and, in a batch, the event's index.
type InputError struct {
	// Code is one of invalid_json, empty_batch, batch_too_large,
	// invalid_envelope, unknown_event_type, derived_event_type,
	// schema_violation, invalid_data.
	Code   string
	Detail string
	// Index is the event's position in a batch, -1 for a single event.
	Index int
	// Violations are the schema's findings (schema_violation).
	Violations []Violation
	// Err is the decoder's error (invalid_json).
	Err error
}

func (e *InputError) Error() string { return e.Code + ": " + e.Detail }

func (e *InputError) Unwrap() error { return e.Err }

func inputErrorf(code, format string, args ...any) *InputError {
	return &InputError{Code: code, Detail: fmt.Sprintf(format, args...), Index: -1}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ParseInputs reads one event or an array of them (at most MaxBatch).
// Unknown fields are refused: a misspelt attribute must not pass silently.
func ParseInputs(body []byte) ([]Input, error) {
	body = bytes.TrimSpace(body)
	var ins []Input
	if len(body) > 0 && body[0] == '[' {
		if err := decodeStrict(body, &ins); err != nil {
			return nil, err
		}
		if len(ins) == 0 {
			return nil, inputErrorf("empty_batch", "the array holds no events")
		}
		if len(ins) > MaxBatch {
			return nil, inputErrorf("batch_too_large", "%d events in one request; at most %d", len(ins), MaxBatch)
		}
		return ins, nil
	}
	var in Input
	if err := decodeStrict(body, &in); err != nil {
		return nil, err
	}
	return []Input{in}, nil
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &InputError{Code: "invalid_json", Detail: err.Error(), Index: -1, Err: err}
	}
	if dec.More() {
		return inputErrorf("invalid_json", "unexpected data after the JSON document")
	}
	return nil
}

// ToEvents validates the envelopes and the data against the catalog. Only
// raw facts (the events log) may be published: incidents and the
// notifier's ledger are derived by Herald itself. Who may publish which
// type is the caller's concern (Def.Owner).
func (c *Catalog) ToEvents(ins []Input) ([]*Event, error) {
	out := make([]*Event, len(ins))
	for i, in := range ins {
		e, err := c.toEvent(in)
		if err != nil {
			var ie *InputError
			if errors.As(err, &ie) && len(ins) > 1 {
				ie.Detail = fmt.Sprintf("event %d: %s", i, ie.Detail)
				ie.Index = i
			}
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// toEvent checks an input and turns it into an event, its data checked
// against its type's schema.
func (c *Catalog) toEvent(in Input) (*Event, error) {
	def, err := c.checkEnvelope(in)
	if err != nil {
		return nil, err
	}
	if len(in.Data) == 0 || bytes.Equal(in.Data, []byte("null")) {
		return nil, inputErrorf("invalid_envelope", "data is required")
	}
	// Store the data compact: the log holds canonical JSON, whatever the
	// producer's formatting.
	var data bytes.Buffer
	if err := json.Compact(&data, in.Data); err != nil {
		return nil, inputErrorf("invalid_json", "data: %v", err)
	}
	e := &Event{
		ID: in.ID, Type: def.Type, Source: in.Source, RequestID: in.RequestID, CausationID: in.CausationID, Raw: data.Bytes(),
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	if in.Time != nil {
		e.Time = in.Time.UTC()
	} else {
		e.Time = time.Now().UTC()
	}
	if err := c.Encode(e); err != nil {
		var se *SchemaError
		if errors.As(err, &se) {
			return nil, &InputError{Code: "schema_violation", Detail: se.Error(), Index: -1, Violations: se.Violations}
		}
		return nil, inputErrorf("invalid_data", "%v", err)
	}
	return e, nil
}

// checkEnvelope checks an input's CloudEvents attributes and returns the
// definition of its type, which must be a raw fact a producer may publish.
func (c *Catalog) checkEnvelope(in Input) (*Def, error) {
	bad := func(format string, args ...any) error { return inputErrorf("invalid_envelope", format, args...) }
	if in.SpecVersion != "" && in.SpecVersion != SpecVersion {
		return nil, bad("specversion %q is not supported; use %q", in.SpecVersion, SpecVersion)
	}
	if in.Type == "" {
		return nil, bad("type is required")
	}
	def, err := c.Def(Type(in.Type))
	if err != nil {
		return nil, inputErrorf("unknown_event_type", "%q is not an event type; GET /v1/event-types lists them", in.Type)
	}
	if def.Log != LogEvents {
		return nil, inputErrorf("derived_event_type", "%s is derived by Herald (log %s); producers publish raw facts only", in.Type, def.Log)
	}
	if strings.TrimSpace(in.Source) == "" || len(in.Source) > 256 {
		return nil, bad("source is required (up to 256 characters): who produced the event, as a URI reference such as billing")
	}
	if err := checkURIReference(in.Source); err != nil {
		return nil, bad("source %q is not a URI reference (RFC 3986): %v", in.Source, err)
	}
	if in.ID != "" && !idPattern.MatchString(in.ID) {
		return nil, bad("id %q must be 1-128 characters of letters, digits, '.', '_', ':' or '-'", in.ID)
	}
	if in.DataSchema != "" && in.DataSchema != def.SchemaURI {
		return nil, bad("dataschema %q does not match %s (this platform accepts %s)", in.DataSchema, in.Type, def.SchemaURI)
	}
	if in.DataContentType != "" && in.DataContentType != ContentType {
		return nil, bad("datacontenttype %q is not supported; data must be %s", in.DataContentType, ContentType)
	}
	if len(in.RequestID) > 128 || len(in.CausationID) > 128 {
		return nil, bad("requestid and causationid are at most 128 characters")
	}
	return def, nil
}

// Binary-mode attributes a producer may send (ce-<name>), as Input has them.
var binaryAttributes = []string{"specversion", "id", "type", "source", "time", "dataschema", "requestid", "causationid"}

// ParseBinary reads one event sent in a protocol binding's binary content
// mode (HTTP's, with NATS's rules): the attributes in ce-<name> headers,
// percent-encoded, the data as the body, its media type the
// datacontenttype. header lists the headers' names; get returns a value
// by name, whatever its case (net/http's Header.Get does). A ce- header
// Herald does not know is refused, as an unknown member is in structured
// mode.
func ParseBinary(header []string, get func(string) string, contentType string, body []byte) (Input, error) {
	attr := func(name string) (string, error) {
		v, err := DecodeHeaderValue(get("ce-" + name))
		if err != nil {
			return "", inputErrorf("invalid_envelope", "header ce-%s: %v", name, err)
		}
		return v, nil
	}
	for _, h := range header {
		name, ok := strings.CutPrefix(strings.ToLower(h), "ce-")
		if ok && !slices.Contains(binaryAttributes, name) {
			return Input{}, inputErrorf("invalid_envelope", "header %s: %s is not an attribute Herald takes (%s)", h, name, strings.Join(binaryAttributes, ", "))
		}
	}
	var in Input
	vals := []*string{&in.SpecVersion, &in.ID, &in.Type, &in.Source, nil, &in.DataSchema, &in.RequestID, &in.CausationID}
	for i, name := range binaryAttributes {
		v, err := attr(name)
		if err != nil {
			return Input{}, err
		}
		if name == "time" {
			if v != "" {
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return Input{}, inputErrorf("invalid_envelope", "header ce-time %q is not an RFC 3339 time", v)
				}
				in.Time = &t
			}
			continue
		}
		*vals[i] = v
	}
	if in.SpecVersion == "" {
		return Input{}, inputErrorf("invalid_envelope", "header ce-specversion is required in binary mode")
	}
	if mt, _, _ := strings.Cut(contentType, ";"); strings.TrimSpace(mt) != "" {
		in.DataContentType = strings.TrimSpace(mt)
	}
	in.Data = body
	return in, nil
}

// ProducerTypes lists the types producers may publish.
func (c *Catalog) ProducerTypes() []string {
	var out []string
	for _, d := range c.Defs() {
		if d.Owner == OwnerProducer {
			out = append(out, string(d.Type))
		}
	}
	return out
}

// ProducerMay refuses (forbidden_event_type) a type of the catalog that
// Herald's own services publish: a fact they record (an OTP verified, a
// delivery completed) must never come from a producer, whichever way it
// comes in. An unknown type is not its concern (ToEvents refuses it).
func (c *Catalog) ProducerMay(t Type) *InputError {
	d, err := c.Def(t)
	if err != nil || d.Owner == OwnerProducer {
		return nil
	}
	return inputErrorf("forbidden_event_type", "%s is published by Herald's %s only; producers may publish %s",
		t, d.Owner, strings.Join(c.ProducerTypes(), ", "))
}
