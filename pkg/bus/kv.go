package bus

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KVWrite is a key-value write in flight: the creation of a key that must
// not exist yet (or the update of one at a known revision), sent as an
// asynchronous publish so that several can share one round trip
// (jetstream.KeyValue.Create and Update are synchronous requests).
type KVWrite struct {
	b      *Bus
	f      jetstream.PubAckFuture
	bucket string
	key    string
	value  []byte
	opts   []jetstream.PublishOpt
}

// CreateAsync sends the creation of key in bucket with a per-key TTL (0:
// the bucket's). Wait tells whether the key was created or already existed.
func (b *Bus) CreateAsync(bucket, key string, value []byte, ttl time.Duration) (*KVWrite, error) {
	return b.UpdateAsync(bucket, key, value, 0, ttl)
}

// UpdateAsync sends the write of key at revision rev (0: the key must not
// exist). Wait reports a lost compare-and-set as jetstream.ErrKeyExists.
func (b *Bus) UpdateAsync(bucket, key string, value []byte, rev uint64, ttl time.Duration) (*KVWrite, error) {
	if err := b.notClosed(); err != nil {
		return nil, err
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(rev)}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	f, err := b.JS.PublishMsgAsync(&nats.Msg{Subject: "$KV." + bucket + "." + key, Data: value}, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: create %s in %s: %w", ErrUnavailable, key, bucket, err)
	}
	return &KVWrite{b: b, f: f, bucket: bucket, key: key, value: value, opts: opts}, nil
}

// Wait returns the new revision, or jetstream.ErrKeyExists (wrapped) when
// the key already had a value — a deleted key counts as existing here;
// callers that reuse keys fall back to KeyValue.Create, which handles it.
// A create that failed transiently (a bucket electing a leader) is sent
// again within ctx; when the repeat finds the key already holding exactly
// this value, the first attempt was stored and its answer lost: that is a
// success, not a conflict.
func (c *KVWrite) Wait(ctx context.Context) (uint64, error) {
	retried := false
	pa, err := c.b.ackOf(ctx, c.f, func(m *nats.Msg) (jetstream.PubAckFuture, error) {
		retried = true
		return c.b.JS.PublishMsgAsync(m, c.opts...)
	})
	if err == nil {
		return pa.Sequence, nil
	}
	if !IsWrongLastSequence(err) {
		return 0, fmt.Errorf("%w: create %s: %w", ErrUnavailable, c.key, err)
	}
	if retried {
		if rev, ok := c.storedByUs(ctx); ok {
			return rev, nil
		}
	}
	return 0, fmt.Errorf("create %s: %w", c.key, jetstream.ErrKeyExists)
}

func (c *KVWrite) storedByUs(ctx context.Context) (uint64, bool) {
	kv, err := c.b.JS.KeyValue(ctx, c.bucket)
	if err != nil {
		return 0, false
	}
	e, err := Retry(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return kv.Get(ctx, c.key) })
	if err != nil || !bytes.Equal(e.Value(), c.value) {
		return 0, false
	}
	return e.Revision(), true
}
