package bus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errDuplicateInProcess is JetStream's 409 "duplicate message id is in
// process" (nats-server's JSStreamDuplicateMessageConflict).
const errDuplicateInProcess jetstream.ErrorCode = 10158

// IsTransient reports an error that a retry of the same operation can cure:
// the stream or bucket is electing a leader (no responders, no answer in
// time, JetStream "temporarily unavailable"), or the connection is being
// re-established after the loss of its server. A cluster that loses one of
// three servers shows these for a few seconds.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrConsumerLeadershipChanged),
		errors.Is(err, jetstream.ErrNoHeartbeat):
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable {
		// 10008 "JetStream system temporarily unavailable", no leader, ...
		return true
	}
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errDuplicateInProcess {
		// A re-send while the first publish of this id is still being
		// proposed (a new leader): asked again, it is stored or answered
		// as the duplicate it is.
		return true
	}
	return false
}

// Pull requests expire after PullExpires and carry a heartbeat every
// PullHeartbeat, so that a pull left waiting on a server that died (or on a
// consumer leader that moved) is noticed after two missed heartbeats, about
// two seconds, rather than the client's default of ten.
const (
	PullExpires   = 5 * time.Second
	PullHeartbeat = time.Second
)

// retryWindow is how long one attempt may take before a transient failure
// is assumed and the operation is tried again; the caller's context bounds
// the whole.
const retryWindow = 2 * time.Second

// Retry runs op until it succeeds, fails with an error that is not
// transient, or ctx ends (then the last error is returned, wrapped in
// ErrUnavailable). Each attempt gets its own deadline of at most
// retryWindow, so an attempt sent to a server that died is abandoned in
// time to try another. op must be safe to repeat: reads, or writes made
// idempotent by an event id or a revision the caller checks.
func Retry[T any](ctx context.Context, op func(ctx context.Context) (T, error)) (T, error) {
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval = 50 * time.Millisecond
	policy.MaxInterval = 500 * time.Millisecond
	var last error
	v, err := backoff.Retry(ctx, func() (T, error) {
		actx, cancel := context.WithTimeout(ctx, retryWindow)
		defer cancel()
		v, err := op(actx)
		if err == nil {
			return v, nil
		}
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			// The attempt's own deadline, not the caller's: no answer in time.
			err = errors.Join(err, nats.ErrTimeout)
		}
		if !IsTransient(err) {
			last = nil
			return v, backoff.Permanent(err)
		}
		last = err
		return v, err
	}, backoff.WithBackOff(policy), backoff.WithMaxElapsedTime(0)) // the caller's context ends it
	if err != nil && last != nil && ctx.Err() != nil {
		return v, fmt.Errorf("%w: %w", ErrUnavailable, last)
	}
	return v, err
}
