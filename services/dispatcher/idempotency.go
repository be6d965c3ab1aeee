package dispatcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
)

// idempotency claims an Idempotency-Key before a send and keeps its first
// answer: the same key and body replay it; a request with the key still in
// progress gets 409; the key with another body gets 422.
type idempotency struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

type idemRecord struct {
	State    string          `json:"state"` // pending | done
	BodyHash []byte          `json:"bodyHash"`
	Until    time.Time       `json:"until,omitempty"` // a pending claim is abandoned after this
	Status   int             `json:"status,omitempty"`
	Answer   json.RawMessage `json:"answer,omitempty"`
}

// claim is a held Idempotency-Key.
type claim struct {
	key string
	rev uint64
}

// replay is a stored answer.
type replay struct {
	Status int
	Answer json.RawMessage
}

func bodyHash(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// acquire claims key for hold; it returns the stored answer instead when the
// key was already used with the same body.
func (i *idempotency) acquire(ctx context.Context, key string, body []byte, hold time.Duration) (*claim, *replay, error) {
	pending, _ := json.Marshal(idemRecord{State: "pending", BodyHash: body, Until: time.Now().Add(hold)})
	for range 5 {
		rev, err := bus.Retry(ctx, func(ctx context.Context) (uint64, error) {
			return i.kv.Create(ctx, key, pending, jetstream.KeyTTL(i.ttl))
		})
		if err == nil {
			return &claim{key: key, rev: rev}, nil, nil
		}
		if !isConflict(err) {
			return nil, nil, fmt.Errorf("idempotency: %w", err)
		}
		e, err := bus.Retry(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return i.kv.Get(ctx, key) })
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile: claim again
		}
		if err != nil {
			return nil, nil, fmt.Errorf("idempotency: %w", err)
		}
		if bytes.Equal(e.Value(), pending) {
			// Our own create, stored before its answer was lost and retried.
			return &claim{key: key, rev: e.Revision()}, nil, nil
		}
		var r idemRecord
		_ = json.Unmarshal(e.Value(), &r)
		if string(r.BodyHash) != string(body) {
			return nil, nil, api.Errorf(http.StatusUnprocessableEntity, "idempotency_key_reused",
				"this Idempotency-Key was used with a different request body")
		}
		if r.State == "done" {
			return nil, &replay{Status: r.Status, Answer: r.Answer}, nil
		}
		if time.Now().Before(r.Until) {
			return nil, nil, api.Errorf(http.StatusConflict, "idempotency_conflict",
				"a request with this Idempotency-Key is still in progress")
		}
		// The holder gave up (crashed): take the claim over.
		rev, err = i.kv.Update(ctx, key, pending, e.Revision())
		if err == nil {
			return &claim{key: key, rev: rev}, nil, nil
		}
		if !isConflict(err) {
			return nil, nil, fmt.Errorf("idempotency: %w", err)
		}
	}
	return nil, nil, api.Errorf(http.StatusConflict, "idempotency_conflict", "a request with this Idempotency-Key is still in progress")
}

// complete stores the answer to replay.
func (i *idempotency) complete(ctx context.Context, c *claim, body []byte, status int, answer any) error {
	a, _ := json.Marshal(answer)
	b, _ := json.Marshal(idemRecord{State: "done", BodyHash: body, Status: status, Answer: a})
	_, err := bus.Retry(ctx, func(ctx context.Context) (uint64, error) { return i.kv.Update(ctx, c.key, b, c.rev) })
	if isConflict(err) {
		// Stored by an attempt whose answer was lost, or taken over.
		if e, gerr := i.kv.Get(ctx, c.key); gerr == nil && bytes.Equal(e.Value(), b) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("idempotency: store answer: %w", err)
	}
	return nil
}

// release forgets the claim: the request did nothing (over a limit, log
// unavailable) and may be sent again with the same key.
func (i *idempotency) release(ctx context.Context, c *claim) {
	_ = i.kv.Delete(ctx, c.key, jetstream.LastRevision(c.rev))
}
