package incident

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of the checkpoint (streams/incident_state.yaml).
const Bucket = "INCIDENT_STATE"

const (
	manifestKey = "checkpoint"
	chunkSize   = 512 << 10
)

// manifest names the chunks of the current snapshot; it is written after
// them, so a crash mid-save leaves the previous checkpoint in force.
type manifest struct {
	Seq     uint64    `json:"seq"`
	Gen     uint64    `json:"gen"`
	Chunks  int       `json:"chunks"`
	Size    int       `json:"size"`
	SHA256  string    `json:"sha256"`
	SavedAt time.Time `json:"savedAt"`
}

// checkpoints stores snapshots in the bucket.
type checkpoints struct {
	kv   jetstream.KeyValue
	last *manifest
}

func openCheckpoints(ctx context.Context, js jetstream.JetStream) (*checkpoints, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("checkpoint bucket %s: %w", Bucket, err)
	}
	return &checkpoints{kv: kv}, nil
}

// load returns a reader of the last snapshot (nil if none).
func (c *checkpoints) load(ctx context.Context) (io.Reader, *manifest, error) {
	e, err := c.kv.Get(ctx, manifestKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var m manifest
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return nil, nil, fmt.Errorf("checkpoint manifest: %w", err)
	}
	var buf bytes.Buffer
	for i := range m.Chunks {
		ce, err := c.kv.Get(ctx, chunkKey(m.Gen, i))
		if err != nil {
			return nil, nil, fmt.Errorf("checkpoint chunk %d: %w", i, err)
		}
		buf.Write(ce.Value())
	}
	sum := sha256.Sum256(buf.Bytes())
	if hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, nil, errors.New("checkpoint: checksum mismatch")
	}
	c.last = &m
	return s2.NewReader(&buf), &m, nil
}

// encode compresses a snapshot as it is written (the JSON is never held
// whole in memory).
func encode(write func(io.Writer) error) ([]byte, error) {
	var buf bytes.Buffer
	zw := s2.NewWriter(&buf)
	if err := write(zw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// save writes a compressed snapshot covering the log up to seq.
func (c *checkpoints) save(ctx context.Context, seq uint64, z []byte) (*manifest, error) {
	sum := sha256.Sum256(z)
	m := &manifest{Seq: seq, Gen: uint64(time.Now().UnixNano()), Size: len(z), SHA256: hex.EncodeToString(sum[:]), SavedAt: time.Now().UTC()}
	if c.last != nil && m.Gen <= c.last.Gen {
		m.Gen = c.last.Gen + 1
	}
	for off := 0; off < len(z) || m.Chunks == 0; off += chunkSize {
		end := min(off+chunkSize, len(z))
		if _, err := c.kv.Put(ctx, chunkKey(m.Gen, m.Chunks), z[off:end]); err != nil {
			return nil, fmt.Errorf("checkpoint chunk: %w", err)
		}
		m.Chunks++
	}
	b, _ := json.Marshal(m)
	if _, err := c.kv.Put(ctx, manifestKey, b); err != nil {
		return nil, fmt.Errorf("checkpoint manifest: %w", err)
	}
	if old := c.last; old != nil {
		for i := range old.Chunks {
			_ = c.kv.Purge(ctx, chunkKey(old.Gen, i))
		}
	}
	c.last = m
	return m, nil
}

// clear forgets the checkpoint (a rebuild from zero).
func (c *checkpoints) clear(ctx context.Context) error {
	if err := c.kv.Purge(ctx, manifestKey); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	return nil
}

func chunkKey(gen uint64, i int) string { return fmt.Sprintf("snapshot.%d.%d", gen, i) }
