package event

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrMalformedEnvelope reports a message whose CloudEvents headers are missing or unreadable.
var ErrMalformedEnvelope = errors.New("malformed envelope")

// Header returns the NATS headers that carry the event's envelope.
func (e *Event) Header() nats.Header {
	h := make(nats.Header, 10)
	// One backing array for every value, and direct map writes (canonical
	// spelling, no textproto canonicalisation): this runs for every event.
	vals := make([]string, 0, 10)
	set := func(k, v string) {
		vals = append(vals, EncodeHeaderValue(v))
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderSpecVersion, SpecVersion)
	set(HeaderID, e.ID)
	set(HeaderType, string(e.Type))
	set(HeaderSource, e.Source)
	set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	set(HeaderDataContentType, ContentType)
	set(HeaderMsgID, e.ID)
	if e.DataSchema != "" {
		set(HeaderDataSchema, e.DataSchema)
	}
	if e.RequestID != "" {
		set(HeaderRequestID, e.RequestID)
	}
	if e.CausationID != "" {
		set(HeaderCausationID, e.CausationID)
	}
	return h
}

// FromMsg reads an event's envelope from a message's subject, headers and body.
// It does not decode the data: Catalog.Decode does that.
func FromMsg(subject string, h nats.Header, body []byte) (*Event, error) {
	get := ReadHeaders(h).Get
	e := &Event{
		ID:          get(HeaderID),
		Type:        Type(get(HeaderType)),
		Source:      get(HeaderSource),
		DataSchema:  get(HeaderDataSchema),
		RequestID:   get(HeaderRequestID),
		CausationID: get(HeaderCausationID),
		Subject:     subject,
		Raw:         body,
	}
	if v := get(HeaderSpecVersion); v != SpecVersion {
		return e, fmt.Errorf("%w: header %s is %q, want %q", ErrMalformedEnvelope, HeaderSpecVersion, v, SpecVersion)
	}
	switch {
	case e.ID == "":
		return e, fmt.Errorf("%w: header %s is missing", ErrMalformedEnvelope, HeaderID)
	case e.Type == "":
		return e, fmt.Errorf("%w: header %s is missing", ErrMalformedEnvelope, HeaderType)
	case e.Source == "":
		return e, fmt.Errorf("%w: header %s is missing", ErrMalformedEnvelope, HeaderSource)
	}
	ts := get(HeaderTime)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return e, fmt.Errorf("%w: header %s %q is not an RFC 3339 time", ErrMalformedEnvelope, HeaderTime, ts)
	}
	e.Time = t
	return e, nil
}
