// Package event defines Herald's event envelope and the catalog of typed events.
//
// An event travels as a NATS message: CloudEvents attributes in headers (binary
// content mode of the CloudEvents NATS binding), the typed JSON data as the body,
// and the event id as Nats-Msg-Id so JetStream de-duplicates re-publications.
package event

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Type names an event kind, e.g. "otp_generated". It is also the last
// token of the subject the event is published on.
type Type string

// Data is implemented by every event payload struct of the catalog.
type Data interface {
	EventType() Type
}

// CloudEvents attributes carried as NATS headers, plus Herald's extensions.
// Extension names are lower-case alphanumerics as the CloudEvents spec requires.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderType        = "ce-type"
	HeaderSource      = "ce-source"
	HeaderTime        = "ce-time"
	HeaderDataSchema  = "ce-dataschema"
	HeaderRequestID   = "ce-requestid"
	HeaderCausationID = "ce-causationid"
	// HeaderDataContentType is the datacontenttype attribute, a header of
	// its own in binary mode (Content-Type would say structured mode).
	HeaderDataContentType = "ce-datacontenttype"
	HeaderMsgID           = "Nats-Msg-Id"

	SpecVersion = "1.0"
	ContentType = "application/json"
)

// Event is one fact: its envelope attributes and its data. Data is the typed
// payload; Raw its JSON encoding. Events read from a stream also carry the
// stream name and sequence, which give the log's total order.
type Event struct {
	ID          string    `json:"id"`
	Type        Type      `json:"type"`
	Source      string    `json:"source"`
	Time        time.Time `json:"time"`
	DataSchema  string    `json:"dataschema,omitempty"`
	RequestID   string    `json:"requestid,omitempty"`
	CausationID string    `json:"causationid,omitempty"`
	// Subject overrides the default subject (see Catalog.Subject).
	Subject string `json:"subject,omitempty"`

	Data Data            `json:"-"`
	Raw  json.RawMessage `json:"data"`

	Stream   string `json:"stream,omitempty"`
	Sequence uint64 `json:"seq,omitempty"`
}

// Option sets an optional envelope attribute in New.
type Option func(*Event)

// WithRequestID sets the correlation id that ties every event of one request together.
func WithRequestID(id string) Option { return func(e *Event) { e.RequestID = id } }

// WithCausation records the event that caused this one, and inherits its
// correlation id unless one is already set.
func WithCausation(cause *Event) Option {
	return func(e *Event) {
		e.CausationID = cause.ID
		if e.RequestID == "" {
			e.RequestID = cause.RequestID
		}
	}
}

// WithID sets a deterministic id, for events whose identity is derived (an
// incident transition) rather than fresh.
func WithID(id string) Option { return func(e *Event) { e.ID = id } }

// WithTime sets the event time; projections use event time, never the wall clock.
func WithTime(t time.Time) Option { return func(e *Event) { e.Time = t } }

// WithSubject publishes the event on a subject other than its type's default.
func WithSubject(s string) Option { return func(e *Event) { e.Subject = s } }

// New builds an event with a fresh UUIDv7 id and the current time.
func New(source string, data Data, opts ...Option) *Event {
	e := &Event{Type: data.EventType(), Source: source, Data: data}
	for _, o := range opts {
		o(e)
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	return e
}

// NewID returns a UUIDv7: time-ordered, so ids sort roughly by creation.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// uuid.NewV7 fails only if the system's random source does.
		panic(fmt.Sprintf("event: generate id: %v", err))
	}
	return id.String()
}

// Decoded returns the event's data as T, for handlers that know the type.
func As[T Data](e *Event) (T, bool) {
	d, ok := e.Data.(T)
	return d, ok
}
