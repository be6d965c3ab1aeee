package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/streams"
)

// Design §7: on a 3-node cluster with R3 streams, losing the stream leader
// loses no acknowledged event, and publishers and consumers carry on.
func TestLosingTheStreamLeaderOfThreeLosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := heraldtest.StartCluster(t, 3)
	b := c.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var (
		mu      sync.Mutex
		handled = map[string]bool{}
	)
	sub, err := b.Consume(ctx, bus.ConsumerConfig{Stream: streams.Events, Durable: "survivor"}, func(_ context.Context, e *event.Event) error {
		mu.Lock()
		handled[e.ID] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)

	publish := func(n int) []string {
		var ids []string
		for len(ids) < n {
			e := event.New("test", event.OTPVerified{App: "shop", Attempts: 1})
			// Retry through the fail-over: the same id cannot be stored twice.
			for {
				if _, err := b.Publish(ctx, e); err == nil {
					break
				} else if !errors.Is(err, bus.ErrUnavailable) || ctx.Err() != nil {
					t.Fatalf("publish: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
				e.Raw = nil
			}
			ids = append(ids, e.ID)
		}
		return ids
	}
	ids := publish(200)

	// Stop the EVENTS stream's leader.
	info, err := b.JS.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	for _, s := range c.Servers {
		if s.Name() == leader {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	ids = append(ids, publish(200)...)

	heraldtest.Eventually(t, 60*time.Second, "every event consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if !handled[id] {
				return false
			}
		}
		return true
	})
	st, err := b.JS.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != uint64(len(ids)) {
		t.Errorf("%d events stored, want %d (none lost, none twice)", si.State.Msgs, len(ids))
	}
	if si.Cluster.Leader == leader {
		t.Errorf("leader is still %s", leader)
	}
}

// Issue 9: reading a stream to its end works on a cluster, also while one
// of the three servers is lost mid-read.
func TestReadAllOnAClusterReadsToTheEndWhileAServerIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := heraldtest.StartCluster(t, 3)
	b := c.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 100_000
	batch := make([]*event.Event, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, event.New("test", event.OTPVerified{App: "shop", Attempts: 1}))
		if len(batch) == cap(batch) {
			if _, err := b.Publish(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// Lose a server other than the one this client is connected to, and the
	// stream's leader if it is another one, once a part has been read.
	victim := ""
	if st, err := b.JS.Stream(ctx, streams.Events); err == nil {
		victim = st.CachedInfo().Cluster.Leader
	}
	if victim == b.NC.ConnectedServerName() {
		for _, s := range c.Servers {
			if s.Name() != victim {
				victim = s.Name()
				break
			}
		}
	}
	for round, lose := range []bool{false, true} {
		read, lastSeq := 0, uint64(0)
		err := b.ReadAll(ctx, streams.Events, nil, func(e *event.Event, err error) error {
			if err != nil {
				return err
			}
			if e.Sequence != lastSeq+1 {
				return fmt.Errorf("sequence %d after %d", e.Sequence, lastSeq)
			}
			lastSeq = e.Sequence
			read++
			if lose && read == n/3 {
				for _, s := range c.Servers {
					if s.Name() == victim {
						s.Shutdown()
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: %v after %d events", round, err, read)
		}
		if read != n {
			t.Fatalf("round %d: read %d events, want %d", round, read, n)
		}
	}
}
