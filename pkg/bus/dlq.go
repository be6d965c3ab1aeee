package bus

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// Why a message was dead-lettered (the Herald-Dlq-Reason header).
const (
	ReasonEnvelope    = "envelope"     // CloudEvents headers missing or unreadable
	ReasonUnknownType = "unknown_type" // ce-type not in the catalog
	ReasonMalformed   = "malformed"    // body is not JSON
	ReasonSchema      = "schema"       // body violates the type's schema
	ReasonSubject     = "subject"      // the subject names another type or log than ce-type
	ReasonHandler     = "handler"      // the handler refused it permanently
	ReasonExhausted   = "exhausted"    // failed MaxDeliver times
)

// Headers a dead letter carries in addition to the original ones.
const (
	HeaderDLQReason     = "Herald-Dlq-Reason"
	HeaderDLQError      = "Herald-Dlq-Error"
	HeaderDLQStream     = "Herald-Dlq-Stream"
	HeaderDLQSubject    = "Herald-Dlq-Subject"
	HeaderDLQSequence   = "Herald-Dlq-Sequence"
	HeaderDLQConsumer   = "Herald-Dlq-Consumer"
	HeaderDLQDeliveries = "Herald-Dlq-Deliveries"
	HeaderDLQTime       = "Herald-Dlq-Time"
	HeaderDLQMsgID      = "Herald-Dlq-Msg-Id"
)

// DeadLetter stores a message in the DLQ stream with the reason, the error
// and the original subject, headers and body. It is written once per
// (stream, consumer, sequence), so a retry after a lost ack stores nothing new.
func (b *Bus) DeadLetter(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, consumer, reason string, cause error) error {
	h := nats.Header{}
	for k, v := range m.Headers() {
		switch k {
		case event.HeaderMsgID:
			h[HeaderDLQMsgID] = v
		case jetstream.ExpectedStreamHeader, jetstream.ExpectedLastSeqHeader,
			jetstream.ExpectedLastSubjSeqHeader, jetstream.ExpectedLastMsgIDHeader:
			// expectations applied to the original publish, not to this one
		default:
			h[k] = v
		}
	}
	msg := fmt.Sprint(cause)
	if len(msg) > 2048 {
		msg = msg[:2048] + "…"
	}
	h.Set(HeaderDLQReason, reason)
	h.Set(HeaderDLQError, msg)
	h.Set(HeaderDLQStream, meta.Stream)
	h.Set(HeaderDLQSubject, m.Subject())
	h.Set(HeaderDLQSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	h.Set(HeaderDLQConsumer, consumer)
	h.Set(HeaderDLQDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	h.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	subject := fmt.Sprintf("dlq.%s.%s.%d", meta.Stream, consumer, meta.Sequence.Stream)
	_, err := b.JS.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: m.Data()},
		jetstream.WithExpectStream(streams.DLQ), jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil && !IsWrongLastSequence(err) {
		return fmt.Errorf("dead-letter %s seq %d: %w", meta.Stream, meta.Sequence.Stream, err)
	}
	return nil
}
