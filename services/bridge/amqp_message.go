package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/heraldhq/herald/pkg/event"
)

// The metadata keys that carry AMQP properties through the router; the
// correlation id uses watermill's own key, so its middleware carries it.
const (
	metaContentType   = "amqp.content_type"
	metaReplyTo       = "amqp.reply_to"
	metaType          = "amqp.type"
	metaRoutingKey    = "amqp.routing_key"
	metaRedelivered   = "amqp.redelivered"
	metaCorrelationID = middleware.CorrelationIDMetadataKey
)

var properties = []string{metaContentType, metaReplyTo, metaType, metaRoutingKey, metaRedelivered, metaCorrelationID}

// idempotencyHeader names a send request's key when its producer cannot
// set the message id.
const idempotencyHeader = "Idempotency-Key"

// marshaler maps AMQP messages as any producer writes them (message_id,
// reply_to, correlation_id, content_type, headers) to watermill's, and
// back: the message id is the watermill UUID, properties and headers are
// metadata. (watermill-amqp's own marshaler reads the UUID from a header
// only its publishers write.)
type marshaler struct{}

func (marshaler) Unmarshal(d amqp.Delivery) (*message.Message, error) {
	id := d.MessageId
	md := make(message.Metadata, len(d.Headers)+len(properties))
	for k, v := range d.Headers {
		md[k] = headerString(v)
		if id == "" && strings.EqualFold(k, idempotencyHeader) {
			id = md[k]
		}
	}
	for k, v := range map[string]string{metaContentType: d.ContentType, metaReplyTo: d.ReplyTo, metaType: d.Type,
		metaRoutingKey: d.RoutingKey, metaCorrelationID: d.CorrelationId} {
		if v != "" {
			md[k] = v
		}
	}
	if d.Redelivered {
		md[metaRedelivered] = "true"
	}
	m := message.NewMessage(id, d.Body)
	m.Metadata = md
	return m, nil
}

func (marshaler) Marshal(m *message.Message) (amqp.Publishing, error) {
	p := amqp.Publishing{
		MessageId:     m.UUID,
		ContentType:   m.Metadata.Get(metaContentType),
		CorrelationId: m.Metadata.Get(metaCorrelationID),
		Type:          m.Metadata.Get(metaType),
		DeliveryMode:  amqp.Persistent,
		Body:          m.Payload,
		Headers:       amqp.Table{},
	}
	for k, v := range m.Metadata {
		if !slices.Contains(properties, k) {
			p.Headers[k] = v
		}
	}
	// A dead letter keeps where it came from, as RabbitMQ's x-death does.
	if rk := m.Metadata.Get(metaRoutingKey); rk != "" {
		p.Headers["x-herald-routing-key"] = rk
	}
	if to := m.Metadata.Get(metaReplyTo); to != "" {
		p.Headers["x-herald-reply-to"] = to
	}
	return p, nil
}

// headerString is an AMQP header value as text.
func headerString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return fmt.Sprint(v)
}

// CloudEvents' AMQP binding: attributes are application properties named
// cloudEvents:<attr> (or cloudEvents_<attr>, for JMS), their values native.
var cePrefixes = []string{"cloudevents:", "cloudevents_"}

// parseEvents reads the message as CloudEvents if it is one: binary mode
// (a cloudEvents:specversion property), structured (content type
// application/cloudevents+json or -batch+json), or a JSON event or batch
// in any content type (an object with specversion, or an array). isEvent
// false: it is a send request.
func parseEvents(m *message.Message) (ins []event.Input, isEvent bool, err error) {
	attrs := map[string]string{}
	for k, v := range m.Metadata {
		for _, p := range cePrefixes {
			if name, ok := strings.CutPrefix(strings.ToLower(k), p); ok {
				attrs["ce-"+name] = event.EncodeHeaderValue(v)
			}
		}
	}
	if _, binary := attrs["ce-specversion"]; binary {
		in, err := event.ParseBinary(slices.Collect(maps.Keys(attrs)), func(n string) string { return attrs[n] },
			m.Metadata.Get(metaContentType), m.Payload)
		if err != nil {
			return nil, true, inputRejection(err)
		}
		return []event.Input{in}, true, nil
	}
	ct := strings.ToLower(m.Metadata.Get(metaContentType))
	if !strings.HasPrefix(ct, "application/cloudevents") && !looksLikeEvents(m.Payload) {
		return nil, false, nil
	}
	ins, err = event.ParseInputs(m.Payload)
	if err != nil {
		return nil, true, inputRejection(err)
	}
	return ins, true, nil
}

// looksLikeEvents: a JSON array, or an object with a specversion member.
func looksLikeEvents(body []byte) bool {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		return true
	}
	var probe struct {
		SpecVersion *json.RawMessage `json:"specversion"`
	}
	return json.Unmarshal(body, &probe) == nil && probe.SpecVersion != nil
}
