package notifier

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/lease"
	"github.com/heraldhq/herald/streams"
)

// One active notifier per event log: the notifier processes compete for
// the lease LeaseName in lease.Bucket. The holder is active — it rebuilds
// its state from the log, consumes INCIDENTS and delivers — and the others
// stand by, taking over when the lease is released (a stop: at once) or
// expires (a crash: within about 6 s). A takeover is a start: the new
// active notifier folds the ledger its predecessor wrote, so what was
// delivered is not delivered again, and a step its predecessor attempted
// without recording is in doubt and looked up in Slack first (doubt.go).

// LeaseName is the key of the notifier's lease in lease.Bucket.
const LeaseName = "notifier"

// Start competes for the lease. It returns once this process knows its
// role: active (its state rebuilt, every unfinished delivery resumed, the
// consumer running) or standby.
func (n *Notifier) Start(ctx context.Context) error {
	kv, err := n.bus.JS.KeyValue(ctx, lease.Bucket)
	if err != nil {
		return fmt.Errorf("notifier: lease bucket %s: %w", lease.Bucket, err)
	}
	if n.lease, err = lease.New(kv, LeaseName, holderName(), lease.DefaultTTL, n.log); err != nil {
		return err
	}
	if err := n.lease.Check(ctx); err != nil {
		return err
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	n.stopLease, n.leaseDone, n.firstLead = stop, make(chan struct{}), make(chan error, 1)
	go func() {
		defer close(n.leaseDone)
		if err := n.lease.Run(lctx, n.lead); err != nil {
			n.log.Error("the notifier's lease cannot be used; this process stays a standby", "error", err)
		}
	}()
	select {
	case <-n.lease.Attempted():
	case <-ctx.Done():
		return errors.Join(ctx.Err(), n.Stop(context.WithoutCancel(ctx)))
	}
	if n.lease.Term() == 0 {
		n.ready.Store(true)
		n.log.Info("standby: another notifier is active; taking over when its lease ends")
		return nil
	}
	select {
	case err := <-n.firstLead:
		if err != nil {
			return errors.Join(err, n.Stop(context.WithoutCancel(ctx)))
		}
	case <-ctx.Done():
		return errors.Join(ctx.Err(), n.Stop(context.WithoutCancel(ctx)))
	}
	n.ready.Store(true)
	return nil
}

// Stop gives the lease up: consuming stops, every step in flight finishes
// and is recorded (cut short when ctx ends), and a standby takes over at
// once. The rest is left to the next active notifier: the ledger says what
// is left.
func (n *Notifier) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.ready.Store(false)
		if n.stopLease == nil {
			return
		}
		n.termMu.Lock()
		n.stopping = ctx.Done()
		n.termMu.Unlock()
		n.stopLease()
		<-n.leaseDone
		n.termMu.Lock()
		n.stopResult = n.termErr
		n.termMu.Unlock()
	})
	return n.stopResult
}

// Active reports whether this process is the active notifier.
func (n *Notifier) Active() bool { return n.active.Load() }

// lead is one term as the active notifier: from winning the lease until
// ctx says it was lost or given up.
func (n *Notifier) lead(ctx context.Context) error {
	err := n.startTerm(ctx)
	select {
	case n.firstLead <- err:
	default:
	}
	if err != nil {
		n.endTerm(closed())
		return fmt.Errorf("notifier takeover: %w", err)
	}
	n.active.Store(true)
	n.metrics.leader.Set(1)
	<-ctx.Done()
	n.active.Store(false)
	n.metrics.leader.Set(0)
	n.termMu.Lock()
	deadline := n.stopping
	n.termMu.Unlock()
	if errors.Is(context.Cause(ctx), lease.ErrLost) {
		// Another process may be active soon: start no new step, let the
		// ones in flight record their answer, within one Slack call.
		n.log.Warn("standby: the notifier's lease was lost", "cause", context.Cause(ctx))
		t := time.NewTimer(n.cfg.Slack.Timeout.D() + 5*time.Second)
		defer t.Stop()
		c := make(chan struct{})
		go func() { <-t.C; close(c) }()
		deadline = c
	}
	if deadline == nil {
		deadline = make(chan struct{})
	}
	err = n.endTerm(deadline)
	n.termMu.Lock()
	n.termErr = err
	n.termMu.Unlock()
	return nil
}

func closed() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// startTerm rebuilds the state from the log, resumes every delivery the
// ledger shows unfinished, and starts consuming INCIDENTS.
func (n *Notifier) startTerm(ctx context.Context) error {
	st, err := Rebuild(ctx, n.bus, n.log)
	if err != nil {
		return err
	}
	n.workersMu.Lock()
	n.workers = map[string]*worker{}
	n.runCtx, n.stopRun = context.WithCancel(context.Background())
	n.hardCtx, n.stopHard = context.WithCancel(context.Background())
	n.workersMu.Unlock()
	n.mu.Lock()
	n.state = st
	n.mu.Unlock()
	if err := n.routeUnrouted(ctx); err != nil {
		return err
	}
	n.mu.Lock()
	lanes := make([]*Lane, 0, len(st.Lanes))
	for _, l := range st.Lanes {
		lanes = append(lanes, l)
	}
	n.mu.Unlock()
	for _, l := range lanes {
		n.kick(l)
	}
	n.startSilences(n.runCtx) // and announces what a window that ended meanwhile held
	n.sub, err = n.bus.Consume(ctx, bus.ConsumerConfig{
		Stream: streams.Incidents, Durable: Durable, FilterSubjects: []string{"incidents.>"}, Concurrency: 1,
	}, n.handle)
	if err != nil {
		return err
	}
	if n.acks, err = n.consumeAcks(ctx); err != nil {
		return err
	}
	mode := "console"
	if n.slack != nil {
		mode = "web_api"
	}
	n.log.Info("notifier active", "term", n.lease.Term(), "incidents", len(st.Timelines), "lanes", len(st.Lanes),
		"subscriptions", len(st.Subscriptions), "slack", mode, "routes", len(n.cfg.Routes))
	return nil
}

// routeUnrouted routes the transitions the log has and the ledger has not
// routed (a notifier died with them delivered and not acknowledged: they
// come back only after the consumer's AckWait, behind later ones), in the
// log's order.
func (n *Notifier) routeUnrouted(ctx context.Context) error {
	type unrouted struct {
		id  string
		ord int
		seq uint64
	}
	var todo []unrouted
	n.mu.Lock()
	for id, tl := range n.state.Timelines {
		for _, t := range tl.Transitions {
			if !n.state.IsRouted(id, t.Transition) {
				todo = append(todo, unrouted{id, tl.Latest().Ordinal, t.Seq})
				break
			}
		}
	}
	n.mu.Unlock()
	sort.Slice(todo, func(a, b int) bool { return todo[a].seq < todo[b].seq })
	for _, u := range todo {
		if err := n.routeUpTo(ctx, u.id, u.ord); err != nil {
			return err
		}
	}
	return nil
}

// endTerm stops consuming and lets every step in flight finish and be
// recorded, cutting them short when deadline is closed.
func (n *Notifier) endTerm(deadline <-chan struct{}) error {
	var errs []error
	for _, sub := range []**bus.Subscription{&n.sub, &n.acks} {
		if *sub != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			errs = append(errs, (*sub).Stop(ctx))
			cancel()
			*sub = nil
		}
	}
	n.stopRun()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-deadline:
		n.stopHard()
		<-done
		errs = append(errs, errors.New("notifier: stop: steps in flight cut short"))
	}
	n.stopHard()
	return errors.Join(errs...)
}

// holderName names this process in the lease, for people.
func holderName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}
