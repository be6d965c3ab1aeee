package incidents

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/streams"
)

// checkpointStore starts an embedded JetStream with the checkpoint bucket.
// (pkg/heraldtest imports this package through the app: an internal test
// cannot use it.)
func checkpointStore(t *testing.T) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	srv, err := bus.StartServer(bus.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defs, err := streams.Load(streams.DefaultConfig(), StreamDefs())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Apply(ctx, js, defs, 1); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return js, kv
}

func keys(t *testing.T, kv jetstream.KeyValue) []string {
	t.Helper()
	ks, err := kv.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ks)
	return ks
}

// The checkpoint's manifest carries the writer's lease term and is written
// by compare-and-set: a writer deposed while paused cannot overwrite the
// checkpoint of a later term, while a later writer overwrites what an
// earlier one saved behind its back. It is long on purpose: one sequence of
// saves by writers of several terms, each step on the state of the last.
func TestTheCheckpointFencesOffAWriterOfAnEarlierTerm(t *testing.T) {
	js, kv := checkpointStore(t)
	ctx := context.Background()
	open := func() *checkpoints {
		c, err := openCheckpoints(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old, cur := open(), open()
	if _, err := old.save(ctx, 10, []byte("term 3 at 10"), 3); err != nil {
		t.Fatal(err)
	}
	// A new writer (term 7) takes over: it reads the manifest, then saves.
	if m, err := cur.refresh(ctx); err != nil || m.Term != 3 || m.Seq != 10 {
		t.Fatalf("refresh: %+v %v", m, err)
	}
	saved, err := cur.save(ctx, 12, []byte("term 7 at 12"), 7)
	if err != nil {
		t.Fatal(err)
	}
	// The old writer wakes up and saves: refused, and it leaves nothing behind.
	if _, err := old.save(ctx, 11, []byte("term 3 at 11"), 3); !errors.Is(err, ErrFenced) {
		t.Fatalf("a save of an earlier term: %v, want ErrFenced", err)
	}
	m, err := open().refresh(ctx)
	if err != nil || m.Term != 7 || m.Seq != 12 || m.Gen != saved.Gen {
		t.Fatalf("checkpoint after the stale save: %+v %v, want term 7 at 12", m, err)
	}
	if got, want := keys(t, kv), []string{manifestKey, chunkKey(saved.Gen, 0)}; !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v (the first and the refused snapshots purged)", got, want)
	}
	// A writer of term 8 saves while the term-7 writer has not seen it (the
	// term-7 one is the late one now): the term-9 writer, which read the
	// manifest before term 8 wrote, still overwrites it.
	next := open()
	if _, err := next.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	between := open()
	if _, err := between.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := between.save(ctx, 13, []byte("term 8 at 13"), 8); err != nil {
		t.Fatal(err)
	}
	last, err := next.save(ctx, 14, []byte("term 9 at 14"), 9)
	if err != nil {
		t.Fatalf("a later term over an earlier one: %v", err)
	}
	if m, err := open().refresh(ctx); err != nil || m.Term != 9 || m.Seq != 14 {
		t.Fatalf("checkpoint: %+v %v, want term 9 at 14", m, err)
	}
	if got, want := keys(t, kv), []string{manifestKey, chunkKey(last.Gen, 0)}; !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	// A rebuild by an earlier term cannot clear it either.
	if err := between.clear(ctx, 8); !errors.Is(err, ErrFenced) {
		t.Errorf("clear of an earlier term: %v, want ErrFenced", err)
	}
	if err := next.clear(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if m, err := open().refresh(ctx); err != nil || m != nil {
		t.Errorf("after clear: %+v %v, want no checkpoint", m, err)
	}
	// And the next save creates the manifest again.
	if _, err := next.save(ctx, 1, []byte("term 9 at 1"), 9); err != nil {
		t.Errorf("save after clear: %v", err)
	}
}
