package notifier

import (
	"context"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// Delivery runs one worker per destination, so that a destination that is
// rate limited or down never delays another. A worker serves its lanes (one
// per incident) in turn, one step at a time: a lane waiting out a backoff,
// or a chat.update token of the workspace, does not hold up the other
// incidents of its destination. Posts are paced per destination and a 429
// on them pauses the whole destination, because Slack's limit is per
// channel; edits are paced per workspace (pace.go). Each step goes
// through the destination's pipeline of stages (stages.go).

type worker struct {
	n      *Notifier
	dest   string
	sink   Sink
	stages []stage // pipeline (stages.go)

	mu     sync.Mutex
	ready  []*Lane
	queued map[*Lane]bool
	sched  map[*Lane]*laneSched
	wake   chan struct{}
}

// laneSched is a lane's retry state; it is not part of the projection. Its
// worker's goroutine owns it, except front and timer, which the timer that
// wakes the lane also reads (under mu, the worker's).
type laneSched struct {
	mu        *sync.Mutex
	notBefore time.Time
	bo        *backoff.ExponentialBackOff
	timer     bool
	// front: when notBefore comes, the lane goes to the front of the queue
	// (it is owed its turn: a reserved edit, a 429 of the workspace).
	front bool
	// refused: steps whose last attempt Slack refused (nothing posted), so
	// not in doubt.
	refused map[string]bool
	// repair: the last post was in doubt and could not be looked up first;
	// look for duplicates of it since then.
	repair time.Time
}

func newLaneSched(mu *sync.Mutex, r RetryConfig) *laneSched {
	s := &laneSched{mu: mu, bo: backoff.NewExponentialBackOff(), refused: map[string]bool{}}
	s.bo.InitialInterval, s.bo.MaxInterval = r.Initial.D(), r.Max.D()
	return s
}

// setAside keeps the lane aside until t; it then keeps its turn.
func (s *laneSched) setAside(t time.Time) {
	s.mu.Lock()
	s.notBefore, s.front = t, true
	s.mu.Unlock()
}

// backOff keeps the lane aside for its next backoff interval and returns it.
func (s *laneSched) backOff() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.bo.NextBackOff()
	s.notBefore = time.Now().Add(d)
	return d
}

// reset: the lane's last step ended; the next one starts a new backoff.
func (s *laneSched) reset() {
	s.mu.Lock()
	s.bo.Reset()
	s.notBefore = time.Time{}
	s.mu.Unlock()
}

// newWorker builds a destination's worker and its pipeline; worker runs it.
func newWorker(n *Notifier, dst string) *worker {
	sink := n.sinkFor(dst)
	posts := newBucket(n.cfg.RateLimit.PerSecond, n.cfg.RateLimit.Burst)
	if sink.Mode() == ModeConsole {
		posts = unlimited()
	}
	w := &worker{n: n, dest: dst, sink: sink, queued: map[*Lane]bool{}, sched: map[*Lane]*laneSched{},
		wake: make(chan struct{}, 1)}
	w.stages = pipeline(n, dst, sink, posts)
	return w
}

// worker returns the destination's worker, starting it on first use.
func (n *Notifier) worker(dst string) *worker {
	n.workersMu.Lock()
	defer n.workersMu.Unlock()
	if w, ok := n.workers[dst]; ok {
		return w
	}
	w := newWorker(n, dst)
	n.workers[dst] = w
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		w.run()
	}()
	return w
}

// kick schedules a lane: its worker will look for its next step.
func (n *Notifier) kick(l *Lane) {
	n.worker(l.Dest).enqueue(l, false)
	n.kickGroup(l)
}

// enqueue puts a lane in its worker's queue: at the back, or at the front
// for a lane that keeps its turn (the one a 429 interrupted) — moved there
// even when it is queued already, because a transition that arrived
// meanwhile queued it at the back.
func (w *worker) enqueue(l *Lane, front bool) {
	w.mu.Lock()
	switch {
	case !w.queued[l]:
		w.queued[l] = true
		if front {
			w.ready = append([]*Lane{l}, w.ready...)
		} else {
			w.ready = append(w.ready, l)
		}
	case front:
		for i, q := range w.ready {
			if q == l {
				copy(w.ready[1:i+1], w.ready[:i])
				w.ready[0] = l
				break
			}
		}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) pop() *Lane {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ready) == 0 {
		return nil
	}
	l := w.ready[0]
	w.ready = w.ready[1:]
	delete(w.queued, l)
	return l
}

func (w *worker) schedOf(l *Lane) *laneSched {
	s, ok := w.sched[l]
	if !ok {
		s = newLaneSched(&w.mu, w.n.cfg.Retry)
		w.sched[l] = s
	}
	return s
}

func (w *worker) run() {
	ctx := w.n.runCtx
	for {
		l := w.pop()
		if l == nil {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		s := w.schedOf(l)
		wait := time.Until(s.notBefore)
		if w.sink.Mode() == ModeWebAPI {
			// Broken credentials stop the whole workspace, not one lane.
			wait = max(wait, time.Until(w.n.auth.untilTime()))
		}
		if wait > 0 && !s.timer {
			s.timer = true
			time.AfterFunc(wait, func() {
				w.mu.Lock()
				s.timer = false
				front := s.front
				s.front = false
				w.mu.Unlock()
				w.enqueue(l, front)
			})
		}
		w.mu.Unlock()
		if wait > 0 {
			continue
		}
		if !w.deliver(ctx, l, s) {
			return
		}
	}
}

// deliver takes a lane's next step through the pipeline, and puts the lane
// where the stage that ended it says. It returns false when the notifier
// is stopping.
func (w *worker) deliver(ctx context.Context, l *Lane, s *laneSched) bool {
	d := &delivery{lane: l, sched: s}
	v := requeue // past the last stage: the lane goes on to its next step
	for _, st := range w.stages {
		if r := st.exec(ctx, d); r != proceed {
			v = r
			break
		}
	}
	switch v {
	case halt:
		return false
	case idle:
		w.mu.Lock()
		if !s.timer && s.notBefore.IsZero() {
			delete(w.sched, l) // its retry state is not needed any more
		}
		w.mu.Unlock()
	case keepTurn:
		w.enqueue(l, true)
	default:
		w.enqueue(l, false)
	}
	return true
}

func retryAfter(err error) time.Duration {
	var e *slack.Error
	if asSlack(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter
	}
	return slack.DefaultRetryAfter
}

// recordSent writes the ledger entry of a step Slack accepted, at once:
// the time between Slack's answer and this acknowledgement is the only
// window in which a crash makes the step be sent again.
func (n *Notifier) recordSent(l *Lane, st *Step, sent Sent, mode string, answered time.Time) bool {
	if mode == ModePagerDuty {
		return n.recordPagerDuty(l, st, answered)
	}
	var (
		data event.Data
		subj string
	)
	switch st.Kind {
	case StepUpdate:
		data = event.SlackMessageUpdated{IncidentID: l.Incident, Transition: st.Key, Channel: orDest(sent.Channel, l),
			TS: sent.TS, Destination: l.Dest}
		subj = ledgerSubject("slack_message_updated", l.Incident, st.Key, l.Dest, StepUpdate)
	default:
		p := event.SlackMessagePosted{IncidentID: l.Incident, Transition: st.Key, Channel: orDest(sent.Channel, l),
			TS: sent.TS, Mode: mode, Destination: l.Dest, Action: st.Kind, Broadcast: sent.Broadcast, Adopted: sent.Adopted}
		if st.Kind == StepRoot {
			p.State = st.Snap.Transition
			if st.list != nil {
				p.State = st.list.key // the version of its group a shared root shows
			}
			if sent.State != "" {
				p.State = sent.State // adopted: what the message found shows
			}
		} else if l.RootTS != "" && capsOf(mode).Thread {
			p.ThreadTS = l.RootTS
		}
		data = p
		subj = ledgerSubject("slack_message_posted", l.Incident, st.Key, l.Dest, st.Kind)
	}
	stored, err := n.writeOnce(n.hardCtx, ledgerEvent(data, subj, st.Cause))
	n.metrics.ledger.Observe(time.Since(answered).Seconds())
	if err != nil {
		n.log.Error("ledger entry NOT written after a successful send: this step will be sent again after a restart",
			"incident", l.Incident, "destination", l.Dest, "step", st.Kind, "transition", st.Key, "error", err)
		return false
	}
	n.apply(stored)
	return true
}

func orDest(channel string, l *Lane) string {
	if channel != "" {
		return channel
	}
	if l.RootChannel != "" {
		return l.RootChannel
	}
	return l.Dest
}

// recordFailed writes a notification_failed entry: the step is not retried.
func (n *Notifier) recordFailed(l *Lane, st *Step, mode string, cause error) bool {
	f := event.NotificationFailed{IncidentID: l.Incident, Transition: st.Key, Destination: l.Dest, Action: st.Kind,
		Mode: mode, Error: "unknown", Detail: slack.Truncate(cause.Error(), 1024)}
	var e *slack.Error
	if asSlack(cause, &e) {
		f.Error, f.Status = e.Code, e.Status
	}
	n.metrics.failures.WithLabelValues(mode, f.Error).Inc()
	n.log.Error("delivery failed for good", "incident", l.Incident, "destination", l.Dest, "step", st.Kind,
		"transition", st.Key, "error", f.Error, "detail", f.Detail)
	subj := ledgerSubject("notification_failed", l.Incident, st.Key, l.Dest, st.Kind)
	stored, err := n.writeOnce(n.hardCtx, ledgerEvent(f, subj, st.Cause))
	if err != nil {
		n.log.Error("notification_failed not written", "subject", subj, "error", err)
		return false
	}
	n.apply(stored)
	return true
}

func (n *Notifier) observeDelivery(st *Step) {
	var seen time.Time
	n.mu.Lock()
	if i := n.state.Timelines[st.Snap.IncidentID]; i != nil {
		seen = i.At(st.Snap.Ordinal).seen
	}
	n.mu.Unlock()
	if !seen.IsZero() {
		n.metrics.delivery.WithLabelValues(st.Kind).Observe(time.Since(seen).Seconds())
	}
}
