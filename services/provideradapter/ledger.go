package provideradapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/sms"
)

// The attempt ledger makes a provider call happen at most once per attempt:
//
//  1. claim: create attempt.<dispatch id>.<n> (create-only; JetStream
//     acknowledges it before anything is sent);
//  2. call the provider;
//  3. record the outcome in the same key.
//
// A redelivered dispatch finds the claim: with an outcome, it reuses it and
// re-emits the same events (same ids, de-duplicated); without one, the
// process died during the call, so whether the SMS left is unknown — the
// attempt is never repeated and the send ends as outcome_unknown. The SMS is
// therefore sent at most once per attempt, and exactly once unless the
// process dies between the claim and the record.

const (
	attemptCalling = "calling"
	attemptDone    = "done"
)

// attemptRecord is one attempt's ledger entry.
type attemptRecord struct {
	State  string         `json:"state"`
	At     time.Time      `json:"at"`
	Result *attemptResult `json:"result,omitempty"`
}

// attemptResult is a recorded provider outcome.
type attemptResult struct {
	Class             sms.Classification `json:"class"`
	StatusCode        int                `json:"statusCode"`
	ProviderCode      string             `json:"providerCode,omitempty"`
	ProviderRequestID string             `json:"providerRequestId,omitempty"`
	Error             string             `json:"error,omitempty"`
	LatencyMs         float64            `json:"latencyMs"`
	CircuitOpen       bool               `json:"circuitOpen,omitempty"`
	NotCalled         bool               `json:"notCalled,omitempty"`
}

func fromResult(r sms.Result) *attemptResult {
	return &attemptResult{Class: r.Class, StatusCode: r.StatusCode, ProviderCode: r.ProviderCode,
		ProviderRequestID: r.ProviderRequestID, Error: r.Error, LatencyMs: float64(r.Latency.Microseconds()) / 1000}
}

// claimState is what a claim found.
type claimState int

const (
	claimed  claimState = iota // this attempt is ours: call the provider
	replayed                   // already made: here is its outcome
	inDoubt                    // made by a process that died during the call
	busy                       // being made right now by another worker
)

// keySafe maps an id onto the characters KV keys allow.
func keySafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=':
			return r
		}
		return '_'
	}, s)
}

func attemptKey(dispatchID string, n int) string {
	return "attempt." + keySafe(dispatchID) + "." + strconv.Itoa(n)
}

// claim takes attempt n of a dispatch, or reports what a previous delivery
// of the dispatch did with it. inFlight is how long a call may last: a
// claim younger than that may still be in progress elsewhere.
func (a *adapter) claim(ctx context.Context, key string, inFlight time.Duration) (claimState, uint64, *attemptResult, error) {
	b, _ := json.Marshal(attemptRecord{State: attemptCalling, At: time.Now().UTC()})
	// An asynchronous create, awaited: the claim is stored before the call,
	// without the request/reply set-up of KeyValue.Create.
	c, err := a.bus.CreateAsync(deliveryBucket, key, b, 0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("claim %s: %w", key, err)
	}
	rev, err := c.Wait(ctx)
	if err == nil {
		return claimed, rev, nil, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, 0, nil, fmt.Errorf("claim %s: %w", key, err)
	}
	rec, err := a.readAttempt(ctx, key)
	if err != nil {
		return 0, 0, nil, err
	}
	switch {
	case rec.State == attemptDone && rec.Result != nil:
		return replayed, 0, rec.Result, nil
	case time.Since(rec.At) < inFlight:
		return busy, 0, nil, nil
	}
	return inDoubt, 0, nil, nil
}

// claimWhenSettled is claim that waits out an attempt still in progress
// elsewhere: a dispatch redelivered at once after a crash finds its
// attempt claimed moments ago by the dead process, and must neither call
// again nor give up while that call could still be running. It polls the
// claim until the attempt is recorded (replayed) or older than inFlight (in
// doubt). inFlight stays below the consumer's ack wait, so the wait does
// not provoke another redelivery.
func (a *adapter) claimWhenSettled(ctx context.Context, key string, inFlight time.Duration) (claimState, uint64, *attemptResult, error) {
	for {
		state, rev, res, err := a.claim(ctx, key, inFlight)
		if err != nil || state != busy {
			return state, rev, res, err
		}
		select {
		case <-ctx.Done():
			return busy, 0, nil, nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// peek reads an attempt without claiming it (nil when it was never made).
func (a *adapter) peek(ctx context.Context, key string) (*attemptRecord, error) {
	rec, err := a.readAttempt(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	return rec, err
}

func (a *adapter) readAttempt(ctx context.Context, key string) (*attemptRecord, error) {
	e, err := bus.Retry(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return a.kv.Get(ctx, key) })
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var rec attemptRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return &rec, nil
}

// record sends an attempt's outcome without waiting: the run awaits its
// acknowledgement together with the events' before the dispatch is
// acknowledged, which saves a round trip per send. The wait retries while
// the bucket elects a leader, so a provider's answer is not turned into an
// in-doubt attempt by the loss of one server. If it is lost all the same
// (the process dies first), the redelivered dispatch finds the claim
// without an outcome and treats the attempt as in doubt: never repeated.
func (a *adapter) record(key string, rev uint64, r *attemptResult) (*bus.KVWrite, error) {
	b, _ := json.Marshal(attemptRecord{State: attemptDone, At: time.Now().UTC(), Result: r})
	w, err := a.bus.UpdateAsync(deliveryBucket, key, b, rev, 0)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", key, err)
	}
	return w, nil
}

// receiptRef lets a delivery receipt find its request.
type receiptRef struct {
	RequestID string `json:"requestId"`
	App       string `json:"app"`
	Route     string `json:"route"`
}

func refKey(provider, messageID string) string { return "ref." + provider + "." + keySafe(messageID) }

func (a *adapter) saveRef(ctx context.Context, provider, messageID string, ref receiptRef) error {
	b, _ := json.Marshal(ref)
	put := func(ctx context.Context) (uint64, error) { return a.kv.Put(ctx, refKey(provider, messageID), b) }
	if _, err := bus.Retry(ctx, put); err != nil {
		return fmt.Errorf("save receipt reference: %w", err)
	}
	return nil
}

func (a *adapter) findRef(ctx context.Context, provider, messageID string) (*receiptRef, error) {
	e, err := bus.Retry(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return a.kv.Get(ctx, refKey(provider, messageID))
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r receiptRef
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, err
	}
	return &r, nil
}
