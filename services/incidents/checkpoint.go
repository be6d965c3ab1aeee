package incidents

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of the checkpoint (streams/incident_state.yaml).
const Bucket = "INCIDENT_STATE"

const (
	manifestKey = "checkpoint"
	chunkSize   = 512 << 10
)

// ErrFenced means a writer with a later lease term saved the checkpoint:
// this process is no longer the incident writer and must not overwrite it.
var ErrFenced = errors.New("checkpoint: a later writer holds it")

// manifest names the chunks of the current snapshot; it is written after
// them, so a crash mid-save leaves the previous checkpoint in force. Term is
// the writer's lease term (pkg/lease: the fencing token).
type manifest struct {
	Seq     uint64    `json:"seq"`
	Term    uint64    `json:"term,omitempty"`
	Gen     uint64    `json:"gen"`
	Chunks  int       `json:"chunks"`
	Size    int       `json:"size"`
	SHA256  string    `json:"sha256"`
	SavedAt time.Time `json:"savedAt"`
}

// checkpoints stores snapshots in the bucket. The manifest is written by
// revision compare-and-set, so that of two processes that both believe they
// are the writer (one paused past its lease), the one with the earlier term
// can never overwrite the other's checkpoint.
type checkpoints struct {
	kv jetstream.KeyValue

	mu   sync.Mutex // the loops, the takeover and a rebuild share it
	last *manifest
	rev  uint64 // revision of the manifest last read or written (0: none)
}

func openCheckpoints(ctx context.Context, js jetstream.JetStream) (*checkpoints, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("checkpoint bucket %s: %w", Bucket, err)
	}
	return &checkpoints{kv: kv}, nil
}

// load returns a reader of the last snapshot (nil if none). The writer
// purges a snapshot's chunks once it saved the next one, so a chunk missing
// means the manifest moved while it was read: it is read again.
func (c *checkpoints) load(ctx context.Context) (io.Reader, *manifest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type loaded struct {
		r io.Reader
		m *manifest
	}
	l, err := backoff.Retry(ctx, func() (loaded, error) {
		r, m, err := c.loadOnce(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			err = backoff.Permanent(err)
		}
		return loaded{r, m}, err
	}, raced()...)
	return l.r, l.m, err
}

func (c *checkpoints) loadOnce(ctx context.Context) (io.Reader, *manifest, error) {
	m, err := c.current(ctx)
	if m == nil || err != nil {
		return nil, nil, err
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
	return s2.NewReader(&buf), m, nil
}

// refresh reads the current manifest (nil if none) and remembers its
// revision, for the next save, and its chunks, to purge after it.
func (c *checkpoints) refresh(ctx context.Context) (*manifest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current(ctx)
}

func (c *checkpoints) current(ctx context.Context) (*manifest, error) {
	e, err := c.kv.Get(ctx, manifestKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		c.rev = 0
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return nil, fmt.Errorf("checkpoint manifest: %w", err)
	}
	c.last, c.rev = &m, e.Revision()
	return &m, nil
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

// save writes a compressed snapshot covering the log up to seq, as the
// writer of lease term term. It fails with ErrFenced, writing no manifest,
// if a writer of a later term saved one.
func (c *checkpoints) save(ctx context.Context, seq uint64, z []byte, term uint64) (*manifest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := sha256.Sum256(z)
	m := &manifest{Seq: seq, Term: term, Gen: uint64(time.Now().UnixNano()), Size: len(z), SHA256: hex.EncodeToString(sum[:]), SavedAt: time.Now().UTC()}
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
	if err := c.writeManifest(ctx, b, term); err != nil {
		for i := range m.Chunks {
			_ = c.kv.Purge(ctx, chunkKey(m.Gen, i))
		}
		return nil, err
	}
	if old := c.last; old != nil {
		for i := range old.Chunks {
			_ = c.kv.Purge(ctx, chunkKey(old.Gen, i))
		}
	}
	c.last = m
	return m, nil
}

// writeManifest writes the manifest at the revision last seen; if another
// process wrote it since, it reads who did: a later term fences this
// writer off, an earlier one (a deposed writer's last save) is overwritten.
func (c *checkpoints) writeManifest(ctx context.Context, b []byte, term uint64) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := c.putManifest(ctx, b)
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return struct{}{}, backoff.Permanent(err)
		}
		cur, rerr := c.current(ctx)
		if rerr != nil {
			return struct{}{}, backoff.Permanent(rerr)
		}
		if cur != nil && cur.Term > term {
			return struct{}{}, backoff.Permanent(fmt.Errorf("%w (term %d, this writer's %d)", ErrFenced, cur.Term, term))
		}
		return struct{}{}, err
	}, raced()...)
	return err
}

// putManifest writes the manifest at the revision last seen (c.rev), or
// creates it if none was.
func (c *checkpoints) putManifest(ctx context.Context, b []byte) error {
	var (
		rev uint64
		err error
	)
	if c.rev == 0 {
		rev, err = c.kv.Create(ctx, manifestKey, b)
	} else {
		rev, err = c.kv.Update(ctx, manifestKey, b, c.rev)
	}
	if err != nil {
		return fmt.Errorf("checkpoint manifest: %w", err)
	}
	c.rev = rev
	return nil
}

// clear forgets the checkpoint (a rebuild from zero), unless a writer of a
// later term than term holds it.
func (c *checkpoints) clear(ctx context.Context, term uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, err := c.current(ctx)
	if err != nil || cur == nil {
		return err
	}
	if cur.Term > term {
		return fmt.Errorf("%w (term %d, this writer's %d)", ErrFenced, cur.Term, term)
	}
	if err := c.kv.Purge(ctx, manifestKey, jetstream.LastRevision(c.rev)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("checkpoint: %w", err)
	}
	c.rev = 0
	return nil
}

func chunkKey(gen uint64, i int) string { return fmt.Sprintf("snapshot.%d.%d", gen, i) }
