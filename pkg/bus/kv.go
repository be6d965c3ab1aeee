package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KVCreate is a key-value create in flight: the write of a key that must not
// exist yet, sent as an asynchronous publish so that several can share one
// round trip (jetstream.KeyValue.Create is a synchronous request).
type KVCreate struct {
	f   jetstream.PubAckFuture
	key string
}

// CreateAsync sends the creation of key in bucket with a per-key TTL (0:
// the bucket's). Wait tells whether the key was created or already existed.
func (b *Bus) CreateAsync(bucket, key string, value []byte, ttl time.Duration) (*KVCreate, error) {
	if err := b.connected(); err != nil {
		return nil, err
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(0)}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	f, err := b.JS.PublishMsgAsync(&nats.Msg{Subject: "$KV." + bucket + "." + key, Data: value}, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: create %s in %s: %v", ErrUnavailable, key, bucket, err)
	}
	return &KVCreate{f: f, key: key}, nil
}

// Wait returns the new revision, or jetstream.ErrKeyExists (wrapped) when
// the key already had a value — a deleted key counts as existing here;
// callers that reuse keys fall back to KeyValue.Create, which handles it.
func (c *KVCreate) Wait(ctx context.Context) (uint64, error) {
	select {
	case pa := <-c.f.Ok():
		return pa.Sequence, nil
	case err := <-c.f.Err():
		if IsWrongLastSequence(err) {
			return 0, fmt.Errorf("create %s: %w", c.key, jetstream.ErrKeyExists)
		}
		return 0, fmt.Errorf("%w: create %s: %v", ErrUnavailable, c.key, err)
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: create %s: %v", ErrUnavailable, c.key, ctx.Err())
	}
}
