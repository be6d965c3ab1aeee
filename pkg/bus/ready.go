package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// needs is what the services on a connection depend on: the streams (and
// key-value buckets, as their KV_ streams) they read or write and the
// consumers they run. Ready checks each of them, so /readyz says 503 while
// any is missing, leaderless or dead rather than reporting the connection.
type needs struct {
	mu      sync.Mutex
	streams []string
	subs    []*Subscription
}

// readyTimeout bounds each answer a readiness check waits for.
const readyTimeout = 2 * time.Second

// Need declares streams the caller cannot work without; a key-value bucket
// is its stream, "KV_<bucket>". Ready then checks them.
func (b *Bus) Need(streams ...string) {
	b.needs.mu.Lock()
	defer b.needs.mu.Unlock()
	for _, s := range streams {
		if !slices.Contains(b.needs.streams, s) {
			b.needs.streams = append(b.needs.streams, s)
		}
	}
}

func (b *Bus) track(s *Subscription) {
	b.needs.mu.Lock()
	b.needs.subs = append(b.needs.subs, s)
	b.needs.mu.Unlock()
}

func (b *Bus) untrack(s *Subscription) {
	b.needs.mu.Lock()
	b.needs.subs = slices.DeleteFunc(b.needs.subs, func(x *Subscription) bool { return x == s })
	b.needs.mu.Unlock()
}

// Ready reports whether the connection and JetStream are usable, every
// stream declared with Need exists, has a leader and takes writes, and
// every running consumer exists on the server and is being consumed. A
// consumer found missing is re-created in the background.
func (b *Bus) Ready(ctx context.Context) error {
	if !b.NC.IsConnected() {
		return fmt.Errorf("nats: %s", b.NC.Status())
	}
	actx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := b.JS.AccountInfo(actx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	b.needs.mu.Lock()
	names := slices.Clone(b.needs.streams)
	subs := slices.Clone(b.needs.subs)
	b.needs.mu.Unlock()
	var errs []error
	// Each answer has its own deadline: one that does not come must not
	// make the others look absent.
	for _, name := range names {
		sctx, cancel := context.WithTimeout(ctx, readyTimeout)
		err := b.streamReady(sctx, name)
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range subs {
		sctx, cancel := context.WithTimeout(ctx, readyTimeout)
		err := s.ready(sctx)
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Bus) streamReady(ctx context.Context, name string) error {
	// Stream info is answered by the stream's leader: no answer means no
	// leader (an election, or a cluster that lost its quorum).
	s, err := b.JS.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("stream %s is missing (herald streams apply creates it)", name)
	case err != nil:
		return fmt.Errorf("stream %s does not answer: %w", name, err)
	}
	info := s.CachedInfo()
	if info.Cluster != nil && info.Cluster.Leader == "" {
		return fmt.Errorf("stream %s has no leader", name)
	}
	if info.Config.Sealed {
		return fmt.Errorf("stream %s is sealed: it takes no writes", name)
	}
	return nil
}
