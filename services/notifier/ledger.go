package notifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// source is the ce-source of the notifier's events.
const source = "herald/notifier"

// Ledger subjects are unique to what they record, and written once:
//
//	notifications.notification_routed.<incident>.<transition>
//	notifications.slack_message_posted.<incident>.<transition>.<destination>.<root|reply>
//	notifications.slack_message_updated.<incident>.<transition>.<destination>.update
//	notifications.notification_failed.<incident>.<transition>.<destination>.<step>
func ledgerSubject(typ event.Type, incident, key string, rest ...string) string {
	s := "notifications." + string(typ) + "." + incident + "." + key
	for _, r := range rest {
		s += "." + r
	}
	return s
}

// ledgerEvent builds a ledger entry with an id derived from its subject, so
// that JetStream's de-duplication also recognises a re-publication.
func ledgerEvent(data event.Data, subject, cause string) *event.Event {
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("herald:"+subject)).String()
	opts := []event.Option{event.WithID(id), event.WithSubject(subject)}
	if cause != "" {
		opts = append(opts, event.WithCausation(&event.Event{ID: cause}))
	}
	return event.New(source, data, opts...)
}

// writeOnce publishes a ledger entry on its write-once subject, retrying
// while JetStream is unavailable until ctx ends. It answers the entry that
// is stored: ours, or the one written before (a redelivery, a rebuild).
func (n *Notifier) writeOnce(ctx context.Context, e *event.Event) (*event.Event, error) {
	delay := 50 * time.Millisecond
	for {
		// Each attempt runs to its own timeout even when ctx has ended:
		// a stop out of time still gets one try at recording a step.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		ack, err := n.bus.PublishOnce(actx, e)
		cancel()
		if err == nil {
			if ack.Duplicate {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				stored, gerr := n.stored(sctx, e.Subject)
				cancel()
				if gerr == nil {
					return stored, nil
				}
			}
			return e, nil
		}
		if !errors.Is(err, bus.ErrUnavailable) {
			return nil, err
		}
		n.log.Warn("ledger write failed; retrying", "subject", e.Subject, "error", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ledger write %s: %w (last error: %w)", e.Subject, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// stored reads the entry already written on a write-once subject.
func (n *Notifier) stored(ctx context.Context, subject string) (*event.Event, error) {
	s, err := n.bus.JS.Stream(ctx, streams.Notifications)
	if err != nil {
		return nil, err
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	e, err := event.FromMsg(m.Subject, m.Header, m.Data)
	if err != nil {
		return nil, err
	}
	if err := n.bus.Catalog.Decode(e); err != nil {
		return nil, err
	}
	e.Stream, e.Sequence = streams.Notifications, m.Sequence
	return e, nil
}
