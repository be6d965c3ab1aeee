package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/classify"
	"github.com/heraldhq/herald/pkg/client"
	"github.com/heraldhq/herald/pkg/event"
)

// Rejection is a message Herald cannot accept (bad input, a type
// producers may not publish, a refused key): it goes to the producer's
// dead-letter destination with Code and Detail, and is never retried. Any
// other error may pass and is retried.
type Rejection struct {
	Code, Detail string
}

func (r *Rejection) Error() string { return r.Code + ": " + r.Detail }

func rejectf(code, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// IsRejection reports whether err is a message Herald refuses.
func IsRejection(err error) bool {
	var r *Rejection
	return errors.As(err, &r)
}

// maxPayload is POST /v1/events' default body limit (http.maxBodyBytes),
// within the EVENTS stream's 1 MiB message limit: a message above it would
// be refused by JetStream on every try and, retried, hold its queue or
// outbox for ever.
const maxPayload = 1 << 20

// checkSize refuses a message above maxPayload.
func checkSize(payload []byte) error {
	if len(payload) > maxPayload {
		return rejectf("body_too_large", "the payload is %d bytes; at most %d", len(payload), maxPayload)
	}
	return nil
}

// intake does for a bridged message exactly what the HTTP API does for a
// request: events are checked as POST /v1/events checks them and published
// with the bridge role; OTP sends are POST /v1/otp/send calls.
type intake struct {
	bus      *bus.Bus
	classify *classify.Classifier
	otp      *client.Client
}

func newIntake(b *bus.Bus, cl *classify.Classifier, cfg Config) *intake {
	c := client.New(cfg.Herald.URL, client.WithKey(cfg.Herald.Key),
		client.WithHTTPClient(&http.Client{Timeout: cfg.Herald.Timeout.D()}),
		// The router's retry middleware and the broker's redelivery retry;
		// the client's own would hold a consumer slot for its 30 s.
		client.WithRetryFor(0))
	return &intake{bus: b, classify: cl, otp: c}
}

// Events checks producers' CloudEvents (parsed by event.ParseInputs or
// event.ParseBinary) and publishes them. Their ids de-duplicate a message
// delivered again: JetStream stores each once (within the EVENTS stream's
// duplicates window).
func (in *intake) Events(ctx context.Context, ins []event.Input) ([]bus.Ack, error) {
	cat := in.bus.Catalog
	for i, e := range ins {
		if ie := cat.ProducerMay(event.Type(e.Type)); ie != nil {
			return nil, rejectf(ie.Code, "event %d: %s", i, ie.Detail)
		}
	}
	events, err := cat.ToEvents(ins)
	if err != nil {
		return nil, inputRejection(err)
	}
	if err := in.classify.Events(cat, events...); err != nil {
		return nil, err // a classification rule's fault: retried, and logged
	}
	acks, err := in.bus.Publish(ctx, events...)
	if err != nil {
		return nil, fmt.Errorf("publishing %d events: %w", len(events), err)
	}
	return acks, nil
}

// inputRejection is a parse or validation error of pkg/event as a
// rejection with its stable code.
func inputRejection(err error) error {
	var ie *event.InputError
	if errors.As(err, &ie) {
		return &Rejection{Code: ie.Code, Detail: ie.Detail}
	}
	return err
}

// Outcome is what became of one OTP send request: the JSON published back
// to the producer.
type Outcome struct {
	// IdempotencyKey is the request's (its message id): the producer's
	// correlation, and the same in every copy of the outcome.
	IdempotencyKey string `json:"idempotencyKey"`
	App            string `json:"app,omitempty"`
	RequestID      string `json:"requestId,omitempty"`
	// Status: sent, pending, accepted (as the API's 200/202), sms_failed,
	// rate_limited, or rejected (the request went to the dead-letter
	// exchange).
	Status       string `json:"status"`
	DeliveryMode string `json:"deliveryMode,omitempty"`
	Provider     string `json:"provider,omitempty"`
	Error        string `json:"error,omitempty"`
	Detail       string `json:"detail,omitempty"`
	// RetryAfter is, for rate_limited, the seconds to wait.
	RetryAfter int `json:"retryAfter,omitempty"`
}

// Outcome statuses that are not the API's own.
const (
	StatusSMSFailed   = "sms_failed"
	StatusRateLimited = "rate_limited"
	StatusRejected    = "rejected"
)

// SendRequest is an OTP send request as a producer writes it on a broker:
// the body of POST /v1/otp/send.
type SendRequest struct {
	App   string `json:"app"`
	Phone string `json:"phone"`
	// Mode "async" answers accepted at once; default: wait for the
	// provider.
	Mode string `json:"mode,omitempty"`
}

// SendOTP makes the request's POST /v1/otp/send with key as its
// Idempotency-Key, so a message delivered again is answered from the
// first send's record and sends no second SMS. The outcome is the API's
// answer; the error is a *Rejection (refused) or may pass (retry).
func (in *intake) SendOTP(ctx context.Context, key string, r SendRequest) (Outcome, error) {
	out := Outcome{IdempotencyKey: key, App: r.App}
	if strings.TrimSpace(key) == "" {
		return out, rejectf("missing_idempotency_key", "a send request needs a message id (or an Idempotency-Key header): without one a redelivery would send a second SMS")
	}
	sent, err := in.otp.SendOTP(ctx, client.Send{App: r.App, Phone: r.Phone, Async: r.Mode == "async", IdempotencyKey: key})
	var failed *client.SMSFailedError
	var limited *client.RateLimitedError
	var refused *client.Error
	switch {
	case err == nil:
		out.RequestID, out.Status, out.DeliveryMode, out.Provider = sent.RequestID, sent.Status, sent.DeliveryMode, sent.Provider
		return out, nil
	case errors.As(err, &failed):
		out.RequestID, out.Status, out.Error, out.Detail = failed.RequestID, StatusSMSFailed, failed.Err.Code, failed.Err.Detail
		return out, nil
	case errors.As(err, &limited):
		out.Status, out.Error, out.Detail = StatusRateLimited, limited.Err.Code, limited.Err.Detail
		out.RetryAfter = int((limited.RetryAfter + time.Second - 1) / time.Second)
		return out, nil
	case errors.Is(err, client.ErrUnavailable):
		return out, err
	case errors.As(err, &refused) && (refused.Status == http.StatusConflict || refused.Status == http.StatusUnauthorized):
		// The same key still in progress (a redelivery racing the first),
		// or the bridge's own key refused (an operator's fix, not the
		// message's fault): later.
		return out, err
	case errors.As(err, &refused):
		return out, &Rejection{Code: refused.Code, Detail: refused.Detail}
	}
	return out, err
}
