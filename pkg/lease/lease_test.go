package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/lease"
	"github.com/heraldhq/herald/streams"
)

// holders records who leads when, and fails the test if two ever lead at once.
type holders struct {
	t      *testing.T
	mu     sync.Mutex
	active map[string]bool
	won    []string             // holder names in order of election
	at     map[string]time.Time // when each was last elected
	lost   map[string]error     // why each last stopped leading
}

func newHolders(t *testing.T) *holders {
	return &holders{t: t, active: map[string]bool{}, at: map[string]time.Time{}, lost: map[string]error{}}
}

// elected is an onElected for the holder name: it leads until ctx ends.
func (h *holders) elected(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		h.mu.Lock()
		for other := range h.active {
			h.t.Errorf("%s elected while %s still leads", name, other)
		}
		h.active[name] = true
		h.won = append(h.won, name)
		h.at[name] = time.Now()
		h.mu.Unlock()
		<-ctx.Done()
		h.mu.Lock()
		delete(h.active, name)
		h.lost[name] = context.Cause(ctx)
		h.mu.Unlock()
		return nil
	}
}

func (h *holders) leader() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name := range h.active {
		return name
	}
	return ""
}

func (h *holders) electedAt(name string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.at[name]
}

func (h *holders) lostBy(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost[name]
}

// contender is one process competing for the lease on its own connection.
type contender struct {
	name string
	b    *bus.Bus
	l    *lease.Lease
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, b *bus.Bus, h *holders, name string) *contender {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	kv, err := b.JS.KeyValue(ctx, lease.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.New(kv, "test", name, lease.DefaultTTL, heraldtest.Logger(t).With("process", name))
	if err != nil {
		t.Fatal(err)
	}
	c := &contender{name: name, b: b, l: l, stop: cancel, done: make(chan error, 1)}
	go func() { c.done <- l.Run(ctx, h.elected(name)) }()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

func (c *contender) halt(t *testing.T) {
	t.Helper()
	c.stop()
	if err := <-c.done; err != nil {
		t.Errorf("%s: Run: %v", c.name, err)
	}
	c.done <- nil // for the cleanup
}

func leasesKV(t *testing.T, b *bus.Bus) jetstream.KeyValue {
	t.Helper()
	kv, err := b.JS.KeyValue(context.Background(), lease.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestOneHolderAtATimeAndAReleaseHandsOverAtOnce(t *testing.T) {
	srv := heraldtest.Server(t)
	h := newHolders(t)
	var cs []*contender
	for i := range 4 {
		cs = append(cs, start(t, heraldtest.Connect(t, srv), h, fmt.Sprintf("p%d", i)))
	}
	byName := map[string]*contender{}
	for _, c := range cs {
		byName[c.name] = c
	}
	// Stop each leader in turn: the next takes over well before the key
	// could have expired, because the stopped one released it.
	seen := map[string]bool{}
	for round := range len(cs) {
		heraldtest.Eventually(t, 10*time.Second, "a leader", func() bool { return h.leader() != "" })
		name := h.leader()
		if seen[name] {
			t.Fatalf("round %d: %s leads again", round, name)
		}
		seen[name] = true
		c := byName[name]
		if c.l.Term() == 0 {
			t.Errorf("%s leads with no term", name)
		}
		stopped := time.Now()
		c.halt(t)
		if c.l.Term() != 0 {
			t.Errorf("%s still has term %d after stopping", name, c.l.Term())
		}
		if round == len(cs)-1 {
			break
		}
		heraldtest.Eventually(t, 10*time.Second, "the next leader", func() bool { return h.leader() != "" })
		next := h.leader()
		if took := h.electedAt(next).Sub(stopped); took >= lease.DefaultTTL/2 {
			t.Errorf("%s took over %s after %s stopped: the release was not seen", next, took, name)
		}
	}
	if _, err := leasesKV(t, cs[0].b).Get(context.Background(), "test"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the last holder did not release the lease: %v", err)
	}
}

func TestAStandbyTakesOverWithinTenSecondsOfAHolderThatStopsRenewing(t *testing.T) {
	srv := heraldtest.Server(t)
	h := newHolders(t)
	first := start(t, heraldtest.Connect(t, srv), h, "first")
	heraldtest.Eventually(t, 10*time.Second, "first elected", func() bool { return h.leader() == "first" })
	standby := start(t, heraldtest.Connect(t, srv), h, "standby")
	// The holder's process dies: its connection drops and it can neither
	// renew nor release.
	killed := time.Now()
	first.b.NC.Close()
	heraldtest.Eventually(t, 15*time.Second, "the standby elected", func() bool { return h.leader() == "standby" })
	took := h.electedAt("standby").Sub(killed)
	t.Logf("takeover %s after the holder died", took)
	if took > 10*time.Second {
		t.Errorf("takeover took %s, the contract is 10 s", took)
	}
	if took < lease.DefaultTTL-2*lease.DefaultTTL/5 { // the last renewal is at most an interval old
		t.Errorf("takeover after %s: sooner than the server can have expired the dead holder's key", took)
	}
	if err := h.lostBy("first"); !errors.Is(err, lease.ErrLost) {
		t.Errorf("the dead holder stepped down with %v, want ErrLost", err)
	}
	if standby.l.Term() <= first.l.Term() {
		t.Errorf("new term %d not above the old one", standby.l.Term())
	}
}

func TestLeadershipIsLostWhenTheServerHoldsAnotherRevision(t *testing.T) {
	b := heraldtest.JetStream(t)
	h := newHolders(t)
	c := start(t, b, h, "holder")
	heraldtest.Eventually(t, 10*time.Second, "elected", func() bool { return h.leader() == "holder" })
	term := c.l.Term()
	// Someone else writes the key (an operator, or a holder the server
	// let in): the next renewal is refused and leadership ends at once.
	kv := leasesKV(t, b)
	moved := time.Now()
	if _, err := kv.Put(context.Background(), "test", []byte(`{"holder":"intruder"}`)); err != nil {
		t.Fatal(err)
	}
	heraldtest.Eventually(t, 5*time.Second, "leadership lost", func() bool { return h.leader() == "" })
	if took := time.Since(moved); took > 2*c.l.RenewInterval()+time.Second {
		t.Errorf("lost after %s, want within a renewal interval", took)
	}
	if err := h.lostBy("holder"); !errors.Is(err, lease.ErrLost) {
		t.Errorf("cause %v, want ErrLost", err)
	}
	e, err := kv.Get(context.Background(), "test")
	if err != nil || string(e.Value()) != `{"holder":"intruder"}` {
		t.Errorf("the lost holder touched the key it no longer holds: %v", err)
	}
	// Once the intruder's key expires, the claim wins again with a new term.
	heraldtest.Eventually(t, 3*lease.DefaultTTL, "elected again", func() bool { return h.leader() == "holder" })
	if c.l.Term() <= term {
		t.Errorf("term %d after re-election, was %d", c.l.Term(), term)
	}
}

func TestRunRefusesABucketThatDoesNotExpireKeys(t *testing.T) {
	b := heraldtest.JetStream(t)
	ctx := context.Background()
	kv, err := b.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "NO_TTL"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.New(kv, "x", "p", lease.DefaultTTL, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Run(ctx, func(context.Context) error {
		t.Error("elected on a bucket that would keep a dead holder's lease forever")
		return nil
	})
	if !errors.Is(err, lease.ErrBucketTTL) {
		t.Errorf("Run: %v, want ErrBucketTTL", err)
	}
}

func TestNewRefusesBadArguments(t *testing.T) {
	kv := leasesKV(t, heraldtest.JetStream(t))
	for _, tc := range []struct {
		name, key, holder string
		ttl               time.Duration
	}{
		{"empty key", "", "p", time.Second},
		{"key with a space", "a b", "p", time.Second},
		{"no holder", "k", "", time.Second},
		{"ttl too short", "k", "p", 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := lease.New(kv, tc.key, tc.holder, tc.ttl, nil); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// The bucket's TTL, data in streams/leases.yaml, is the lease's TTL.
func TestTheBucketDefinitionExpiresKeysAfterTheDefaultTTL(t *testing.T) {
	defs, err := streams.Load(streams.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		if d.Name == lease.Bucket {
			if d.Kind != "kv" || d.TTL.D() != lease.DefaultTTL || d.History != 1 {
				t.Errorf("%s: kind %s ttl %s history %d, want kv, %s, 1", d.Name, d.Kind, d.TTL.D(), d.History, lease.DefaultTTL)
			}
			return
		}
	}
	t.Errorf("no %s definition", lease.Bucket)
}
