// Package lease is a leader lease held in a JetStream key-value bucket: of
// the processes that run the same role, exactly one holds the lease and acts;
// the others stand by and take over when it is released or expires.
//
// The lease is one key of the bucket HERALD_LEASES (streams/leases.yaml). It
// is won with a create-only write and renewed by revision compare-and-set,
// so two holders can never both succeed; the bucket's TTL expires the key of
// a holder that stopped renewing (killed, partitioned). A holder steps down
// on its own before the server would let anybody else in, so that at no
// moment do two processes believe they hold it.
package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of the leases (streams/leases.yaml).
const Bucket = "HERALD_LEASES"

// DefaultTTL is the bucket's TTL: how long after its last renewal the key of
// a holder that stopped renewing disappears from the server.
const DefaultTTL = 5 * time.Second

var (
	// ErrLost is the cause of the context handed to onElected when
	// leadership is lost: a renewal was refused (the revision moved), or
	// no renewal succeeded in time.
	ErrLost = errors.New("lease lost")
	// ErrBucketTTL means the bucket never expires keys (a dead holder would
	// keep the lease for ever) or expires them sooner than the lease's TTL
	// (a live holder's key could vanish while it still acts).
	ErrBucketTTL = errors.New("lease bucket TTL")
)

// Lease is one process's claim on a named lease.
//
// Timing, for a TTL t (DefaultTTL, 5 s): the holder renews every t/5 (1 s)
// and steps down t − t/5 (4 s) after the last renewal it sent that
// succeeded; the server drops the key t (5 s) after it stored that renewal,
// and a standby tries to create it every t/5 (1 s), or at once when the
// holder releases it. A killed holder is therefore replaced within about
// t + t/5 (6 s; measured 4.8–6.0 s); a stopped one at once. The t/5 between stepping down and expiry is
// the margin against scheduling delays.
type Lease struct {
	kv     jetstream.KeyValue
	name   string
	holder string
	ttl    time.Duration
	renew  time.Duration
	value  []byte // what this instance writes: holder name and instance token
	log    *slog.Logger

	attempted     chan struct{} // closed after Run's first try to win
	attemptedOnce sync.Once

	mu   sync.Mutex
	term uint64 // revision the lease was won at; 0 while not held
	rev  uint64 // revision of this holder's last write
}

// record is the lease's value.
type record struct {
	Holder   string `json:"holder"`
	Instance string `json:"instance"`
	PID      int    `json:"pid"`
}

// New prepares a claim on lease name in kv for holder (a name for people:
// host, pod; each Lease also carries its own random instance token, so two
// processes given the same holder name never mistake each other's claim).
// ttl must not exceed the bucket's TTL (checked by Check and Run).
func New(kv jetstream.KeyValue, name, holder string, ttl time.Duration, log *slog.Logger) (*Lease, error) {
	switch {
	case kv == nil:
		return nil, errors.New("lease: no key-value bucket")
	case !validKey(name):
		return nil, fmt.Errorf("lease: %q is not a valid key", name)
	case holder == "":
		return nil, errors.New("lease: holder is required")
	case ttl < 500*time.Millisecond:
		return nil, fmt.Errorf("lease: ttl %s is under 500ms", ttl)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := json.Marshal(record{Holder: holder, Instance: rand.Text(), PID: os.Getpid()})
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	return &Lease{kv: kv, name: name, holder: holder, ttl: ttl, renew: ttl / 5, value: v,
		log: log.With("lease", name, "holder", holder), attempted: make(chan struct{})}, nil
}

// Name is the lease's key.
func (l *Lease) Name() string { return l.name }

// Holder is the holder name this claim was made for.
func (l *Lease) Holder() string { return l.holder }

// TTL is the lease's time to live.
func (l *Lease) TTL() time.Duration { return l.ttl }

// RenewInterval is how often the holder renews and a standby tries to win.
func (l *Lease) RenewInterval() time.Duration { return l.renew }

// Term is the fencing token of the current leadership: the bucket revision
// the lease was won at (revisions only grow, so a later holder always has a
// greater term), or 0 while the lease is not held. A writer guards a write
// by storing its term with it and refusing to overwrite a greater one.
func (l *Lease) Term() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term
}

// Attempted is closed once Run has tried to win the lease for the first
// time (Term then tells whether it did), or returned: a process that must
// not serve before knowing its role waits for it.
func (l *Lease) Attempted() <-chan struct{} { return l.attempted }

func (l *Lease) markAttempted() { l.attemptedOnce.Do(func() { close(l.attempted) }) }

// Check verifies that the bucket expires keys within the lease's TTL.
func (l *Lease) Check(ctx context.Context) error {
	st, err := l.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("lease %s: bucket status: %w", l.name, err)
	}
	if st.TTL() == 0 || st.TTL() < l.ttl {
		return fmt.Errorf("%w: bucket %s expires keys after %s, the lease needs a TTL of at least %s",
			ErrBucketTTL, st.Bucket(), st.TTL(), l.ttl)
	}
	return nil
}

// Run competes for the lease until ctx is done. Each time it is won,
// onElected runs with a context that is cancelled the moment leadership is
// lost (its cause then wraps ErrLost) or ctx is done; onElected must return
// promptly after that, as the lease is no longer renewed. When onElected
// returns (or ctx is done) the lease is released, so that a standby takes
// over at once; if onElected returned by itself, Run competes again after
// one renewal interval. Run returns nil when ctx is done, or an error that
// wraps ErrBucketTTL if the bucket cannot serve the lease.
func (l *Lease) Run(ctx context.Context, onElected func(ctx context.Context) error) error {
	defer l.markAttempted()
	for {
		err := l.Check(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, ErrBucketTTL) {
			return err
		}
		if !l.pause(ctx, nil) {
			return nil
		}
	}
	released := make(chan struct{}, 1)
	stopWatch := l.watch(ctx, released)
	defer func() { stopWatch() }() // the watcher in use when Run returns
	for {
		sent := time.Now()
		won, err := l.acquire(ctx)
		l.markAttempted()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			l.log.Warn("lease: trying to win it failed", "error", err)
		case won:
			if err := l.lead(ctx, sent, onElected); err != nil {
				l.log.Warn("lease: the elected work failed; released", "error", err)
			}
			if ctx.Err() != nil {
				return nil
			}
			released = nil // wait a full interval: let another contender win
		}
		if !l.pause(ctx, released) {
			return nil
		}
		if released == nil {
			released = make(chan struct{}, 1)
			stopWatch()
			stopWatch = l.watch(ctx, released)
		}
	}
}

// pause waits one renewal interval, less if the lease is released.
func (l *Lease) pause(ctx context.Context, released <-chan struct{}) bool {
	t := time.NewTimer(l.renew)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-released:
	}
	return true
}

// watch signals on released when the key is deleted or purged (a holder
// stopping cleanly). Expiry leaves no marker: the periodic attempt finds it.
func (l *Lease) watch(ctx context.Context, released chan<- struct{}) (stop func()) {
	w, err := l.kv.Watch(ctx, l.name, jetstream.UpdatesOnly())
	if err != nil {
		l.log.Debug("lease: not watching for releases", "error", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e != nil && e.Operation() != jetstream.KeyValuePut {
				select {
				case released <- struct{}{}:
				default:
				}
			}
		}
	}()
	return func() {
		_ = w.Stop()
		select { // closed once the subscription is; never hang on a dead connection
		case <-done:
		case <-time.After(l.renew):
		}
	}
}

// acquire tries to win the lease once.
func (l *Lease) acquire(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.renew)
	defer cancel()
	rev, err := l.kv.Create(ctx, l.name, l.value)
	if err == nil {
		l.won(rev)
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("create: %w", err)
	}
	// Still this very claim's key: it stepped down when renewals failed
	// (a stream leader election, say) but the server kept the key, so no
	// one else can have held it since. Take it back at once.
	e, err := l.kv.Get(ctx, l.name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil // just expired or released: the next attempt creates it
	}
	if err != nil {
		return false, fmt.Errorf("get: %w", err)
	}
	if !bytes.Equal(e.Value(), l.value) {
		return false, nil
	}
	rev, err = l.kv.Update(ctx, l.name, l.value, e.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("update: %w", err)
	}
	l.won(rev)
	return true, nil
}

func (l *Lease) won(rev uint64) {
	l.mu.Lock()
	l.term, l.rev = rev, rev
	l.mu.Unlock()
	l.log.Info("lease won", "term", rev, "ttl", l.ttl)
}

// lead runs onElected while renewing the lease, and ends the leadership.
func (l *Lease) lead(ctx context.Context, sent time.Time, onElected func(context.Context) error) error {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- onElected(lctx) }()

	hold := l.ttl - l.renew
	deadline := sent.Add(hold)
	expired := time.NewTimer(time.Until(deadline))
	defer expired.Stop()
	tick := time.NewTicker(l.renew)
	defer tick.Stop()
	var (
		result   error
		finished bool
		lost     error
	)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case result = <-done:
			finished = true
			break loop
		case <-expired.C:
			lost = fmt.Errorf("%w: no renewal succeeded for %s", ErrLost, hold)
			break loop
		case <-tick.C:
			sent := time.Now()
			err := l.renewOnce(ctx, deadline)
			switch {
			case err == nil:
				deadline = sent.Add(hold)
				expired.Reset(time.Until(deadline))
			case errors.Is(err, ErrLost):
				lost = err
				break loop
			case ctx.Err() == nil:
				l.log.Warn("lease: renewal failed; retrying", "error", err, "stepDownIn", time.Until(deadline).Round(time.Millisecond))
			}
		}
	}
	if lost != nil {
		cancel(lost)
		l.log.Warn("lease lost", "term", l.Term(), "reason", lost)
	} else {
		cancel(context.Canceled)
	}
	if !finished {
		result = <-done
	}
	l.mu.Lock()
	term, rev := l.term, l.rev
	l.term, l.rev = 0, 0
	l.mu.Unlock()
	if lost == nil {
		l.release(ctx, term, rev)
	}
	return result
}

// renewOnce extends the lease by writing it again at the revision it has.
func (l *Lease) renewOnce(ctx context.Context, deadline time.Time) error {
	// A request that reached no stream leader (one being elected) is never
	// answered: give up on it after an interval and send the next.
	if next := time.Now().Add(l.renew); next.Before(deadline) {
		deadline = next
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	next, err := l.kv.Update(ctx, l.name, l.value, rev)
	if err == nil {
		l.mu.Lock()
		l.rev = next
		l.mu.Unlock()
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return err
	}
	// A renewal whose acknowledgement was lost did land: the key holds
	// this claim's value at a later revision, and nobody wrote since.
	e, gerr := l.kv.Get(ctx, l.name)
	switch {
	case gerr == nil && bytes.Equal(e.Value(), l.value) && e.Revision() > rev:
		l.mu.Lock()
		l.rev = e.Revision()
		l.mu.Unlock()
		return nil
	case gerr == nil || errors.Is(gerr, jetstream.ErrKeyNotFound):
		return fmt.Errorf("%w: the server holds another revision than %d (expired, taken or deleted)", ErrLost, rev)
	}
	return fmt.Errorf("renewal refused and the lease unreadable: %w", gerr)
}

// release deletes the key if it is still at this holder's revision.
func (l *Lease) release(ctx context.Context, term, rev uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.renew)
	defer cancel()
	if err := l.kv.Delete(ctx, l.name, jetstream.LastRevision(rev)); err != nil {
		l.log.Warn("lease: release failed; it expires by itself", "error", err, "within", l.ttl)
		return
	}
	l.log.Info("lease released", "term", term)
}

// validKey is the key-value key syntax.
func validKey(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' {
		return false
	}
	for _, c := range k {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '/', c == '=', c == '.':
		default:
			return false
		}
	}
	return true
}
