package bus

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/event"
)

// DeadLetter is one DLQ message as operators read it (herald dlq, the
// console): why it was refused, where the original was, and the original.
type DeadLetter struct {
	Seq        uint64    `json:"seq"`
	Stored     time.Time `json:"stored"`
	Reason     string    `json:"reason"`
	Error      string    `json:"error"`
	Stream     string    `json:"stream"`
	Subject    string    `json:"subject"`
	Sequence   string    `json:"sequence"`
	Consumer   string    `json:"consumer"`
	Deliveries string    `json:"deliveries"`
	Type       string    `json:"type,omitempty"`
	ID         string    `json:"id,omitempty"`
	RequestID  string    `json:"requestId,omitempty"`
	// Headers are the message's, the original's envelope included.
	Headers nats.Header `json:"headers,omitempty"`
	// Data is the original data: its JSON, or a JSON string of what was
	// not JSON.
	Data json.RawMessage `json:"data"`
}

// ReadDeadLetter reads a DLQ message at its position.
func ReadDeadLetter(pos Position, h nats.Header, data []byte) DeadLetter {
	d := DeadLetter{
		Seq: pos.Seq, Stored: pos.StoredAt(), Reason: h.Get(HeaderDLQReason), Error: h.Get(HeaderDLQError),
		Stream: h.Get(HeaderDLQStream), Subject: h.Get(HeaderDLQSubject), Sequence: h.Get(HeaderDLQSequence),
		Consumer: h.Get(HeaderDLQConsumer), Deliveries: h.Get(HeaderDLQDeliveries),
		Type: event.HeaderValue(h, event.HeaderType), ID: event.HeaderValue(h, event.HeaderID),
		RequestID: event.HeaderValue(h, event.HeaderRequestID), Headers: h, Data: data,
	}
	if !json.Valid(data) {
		d.Data, _ = json.Marshal(string(data))
	}
	return d
}
