package dispatcher

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/streams"
)

//go:embed kv/*.yaml
var kvFiles embed.FS

// StreamDefs are the dispatcher's key-value buckets (streams/ format).
func StreamDefs() fs.FS {
	return streams.Dir(kvFiles, "kv")
}

// Bucket names.
const (
	codesBucket       = "OTP_CODES"
	limitsBucket      = "OTP_LIMITS"
	idempotencyBucket = "OTP_IDEMPOTENCY"
)

// Code states.
const (
	statePending = "pending"
	stateUsed    = "used"
	stateRevoked = "revoked"
)

// codeRecord is what is stored of an issued OTP: never the code.
type codeRecord struct {
	App  string `json:"app"`
	Hash []byte `json:"hash"`
	// HashKeyID names the hash key that made Hash, so that a code hashed
	// before a key rotation still verifies ("": key id "0").
	HashKeyID   string    `json:"hashKeyId,omitempty"`
	ExpiresAt   time.Time `json:"expiresAt"`
	Attempts    int       `json:"attempts"`
	MaxAttempts int       `json:"maxAttempts"`
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
}

// codeStore keeps code records in JetStream KV with optimistic concurrency.
type codeStore struct {
	bus *bus.Bus
	kv  jetstream.KeyValue
}

// errNotFound: no record for this request id (never issued, or long expired).
var errNotFound = errors.New("no such OTP")

// pendingCode is a code record being stored.
type pendingCode struct{ c *bus.KVWrite }

// createAsync sends the record of a new request id (kept an hour past the
// code's TTL, so that a late verify learns "expired", not "unknown").
func (s *codeStore) createAsync(requestID string, r codeRecord, ttl time.Duration) (pendingCode, error) {
	b, _ := json.Marshal(r)
	c, err := s.bus.CreateAsync(codesBucket, requestID, b, ttl+time.Hour)
	if err != nil {
		return pendingCode{}, fmt.Errorf("store otp: %w", err)
	}
	return pendingCode{c}, nil
}

func (p pendingCode) wait(ctx context.Context) error {
	if _, err := p.c.Wait(ctx); err != nil {
		return fmt.Errorf("store otp: %w", err)
	}
	return nil
}

func (s *codeStore) get(ctx context.Context, requestID string) (codeRecord, uint64, error) {
	var r codeRecord
	e, err := bus.Retry(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, requestID) })
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return r, 0, errNotFound
	}
	if err != nil {
		return r, 0, fmt.Errorf("read otp: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return r, 0, fmt.Errorf("read otp: %w", err)
	}
	return r, e.Revision(), nil
}

// update applies f to the record until it wins the compare-and-set (f sees
// the latest state each time); f returning false writes nothing. A write
// retried after a lost answer comes back as a conflict although it was
// stored: the record then reads back as exactly what was written, and that
// is the success it is (f is not applied twice).
func (s *codeStore) update(ctx context.Context, requestID string, f func(*codeRecord) bool) (codeRecord, bool, error) {
	var wrote codeRecord
	var written []byte
	for range 10 {
		r, rev, err := s.get(ctx, requestID)
		if err != nil {
			return r, false, err
		}
		if written != nil {
			if b, _ := json.Marshal(r); bytes.Equal(b, written) {
				return wrote, true, nil
			}
		}
		if !f(&r) {
			return r, false, nil
		}
		b, _ := json.Marshal(r)
		_, err = bus.Retry(ctx, func(ctx context.Context) (uint64, error) { return s.kv.Update(ctx, requestID, b, rev) })
		if err == nil {
			return r, true, nil
		}
		if !isConflict(err) {
			return r, false, fmt.Errorf("update otp: %w", err)
		}
		wrote, written = r, b
	}
	return codeRecord{}, false, errors.New("update otp: too much contention")
}

// isConflict reports a lost compare-and-set.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || bus.IsWrongLastSequence(err)
}
