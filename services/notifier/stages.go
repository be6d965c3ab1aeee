package notifier

import (
	"context"
	"errors"
	"time"

	"github.com/heraldhq/herald/pkg/slack"
)

// A lane's step goes through its destination's pipeline: small stages, each
// deciding one thing, composed in one place (pipeline), as Alertmanager's
// notify package composes its stages. A stage works on the step's delivery
// and answers whether the step goes on to the next stage or, if it ends
// there, where its lane goes (the worker puts it there: deliver.go).

// delivery is one step of a lane on its way through the pipeline.
type delivery struct {
	lane  *Lane
	sched *laneSched
	// step is the step being delivered (dedupStage, paceStage).
	step *Step
	// attempt is set for a step whose attempt is recorded before it is
	// sent (a Web API post: doubtStage).
	attempt *attempt
	// The answer: what the sink (or, for a step in doubt, the look-up in
	// Slack) said, and when.
	sent     Sent
	err      error
	answered time.Time
}

// attempt is a Web API post's slack_post_attempted entry.
type attempt struct {
	id string    // stepID
	at time.Time // when it was recorded
	// unchecked: the step was in doubt and could not be looked up first.
	unchecked bool
}

// verdict is what a stage decides about a step.
type verdict int

const (
	proceed  verdict = iota // on to the next stage
	requeue                 // the lane goes to the back of its worker's queue: its next step, or a retry
	keepTurn                // the lane goes to the front: it is owed its turn (a 429, a reserved edit)
	idle                    // the lane has nothing to send now
	halt                    // the notifier stops in the middle of the step
)

// stage is one stage of the pipeline.
type stage interface {
	exec(ctx context.Context, d *delivery) verdict
}

// pipeline composes the stages a step of destination dst goes through, in
// order. It is the one place that says what delivering a step is.
func pipeline(n *Notifier, dst string, sink Sink, posts *bucket) []stage {
	mode := sink.Mode()
	stages := []stage{
		dedupStage{n: n, caps: sink.Caps()},
		paceStage{n: n, caps: sink.Caps(), edits: n.pace[methodUpdate], posts: posts},
	}
	if mode == ModeWebAPI {
		// Web API posts close the crash window (doubt.go).
		stages = append(stages, doubtStage{n: n})
	}
	return append(stages,
		sendStage{n: n, sink: sink},
		retryStage{n: n, dest: dst, mode: mode, posts: posts},
		recordStage{n: n, mode: mode},
		repairStage{n: n},
		settleStage{n: n, mode: mode},
	)
}

// dedupStage picks the lane's next step from the projection. Every step
// sent is recorded in the ledger before the next one, and the projection
// folds the ledger, so a step recorded is never picked again (State.Next).
type dedupStage struct {
	n    *Notifier
	caps Caps // the destination's sink
}

func (s dedupStage) exec(_ context.Context, d *delivery) verdict {
	s.n.mu.Lock()
	d.step = s.n.state.Next(d.lane, s.caps)
	if d.step == nil {
		d.step = s.n.state.withGroup(d.lane, s.n.reminder(d.lane)) // nothing else to say: a reminder, when due
	}
	var due time.Time
	if d.step != nil {
		due = s.n.groupDue(d.lane, d.step)
	}
	s.n.mu.Unlock()
	if d.step == nil {
		return idle
	}
	if !due.IsZero() {
		d.sched.setAside(due) // a shared root waits groupWait for its group
		return keepTurn
	}
	return proceed
}

// paceStage waits for the rate limit of the step's method (pace.go). Edits
// are paced per workspace: without a token now, the lane waits aside for
// the next one (keeping its turn) and the destination's other incidents go
// meanwhile, unless it owes a thread reply, which need not wait for the
// edit. The token is taken when the call goes, so that lanes waking
// together never exceed it. Posts wait for the destination's bucket.
type paceStage struct {
	n     *Notifier
	caps  Caps
	edits *bucket // the workspace's chat.update
	posts *bucket // the destination's posts
}

func (s paceStage) exec(ctx context.Context, d *delivery) verdict {
	if d.step.Kind == StepUpdate {
		at := s.edits.take()
		if time.Until(at) <= 0 {
			return proceed
		}
		s.n.mu.Lock()
		reply := s.n.state.NextReply(d.lane)
		s.n.mu.Unlock()
		if reply == nil {
			d.sched.setAside(at)
			return keepTurn
		}
		d.step = reply
	}
	if err := s.posts.wait(ctx); err != nil {
		return halt
	}
	// Transitions that arrived while it waited coalesce into this step (a
	// root showing a later state); a step of another kind waits its own
	// turn.
	s.n.mu.Lock()
	if latest := s.n.state.Next(d.lane, s.caps); latest != nil && latest.Kind == d.step.Kind {
		d.step = latest
	}
	s.n.mu.Unlock()
	return proceed
}

// doubtStage closes the crash window of a Web API post (doubt.go): it
// records the attempt first, and looks a step in doubt up in Slack, where
// the message found answers for the step instead of a second post.
type doubtStage struct{ n *Notifier }

func (s doubtStage) exec(ctx context.Context, d *delivery) verdict {
	if d.step.Kind == StepUpdate {
		return proceed // an edit twice is harmless
	}
	a, found, err := s.n.attempt(ctx, d.lane, d.step, d.sched)
	if errors.Is(err, errStopping) {
		return halt
	}
	d.attempt = a
	if found != nil || err != nil {
		d.sent, d.err, d.answered = deref(found), err, time.Now()
	}
	return proceed
}

func deref(s *Sent) Sent {
	if s == nil {
		return Sent{}
	}
	return *s
}

// sendStage sends the step, unless a look-up answered for it already.
type sendStage struct {
	n    *Notifier
	sink Sink
}

func (s sendStage) exec(ctx context.Context, d *delivery) verdict {
	if !d.answered.IsZero() {
		return proceed
	}
	// The call is not cut short by a stop, even one out of time (the HTTP
	// client's timeout bounds it): an answer that arrives must be recorded,
	// or the step would be sent again after a restart.
	d.sent, d.err = s.sink.Send(context.WithoutCancel(ctx), d.lane, d.step)
	d.answered = time.Now()
	if a := d.attempt; a != nil {
		switch k := slack.KindOf(d.err); {
		case d.err == nil:
			delete(d.sched.refused, a.id)
			if a.unchecked {
				d.sched.repair = a.at
			}
		case k != slack.Transient:
			// Slack answered, and refused: nothing was posted.
			d.sched.refused[a.id] = true
		default:
			delete(d.sched.refused, a.id) // 5xx, timeout, network: it may be there
		}
	}
	if d.err == nil && s.n.crashAfterSend != nil && s.n.crashAfterSend(stepID(d.lane, d.step)) {
		s.n.crash()
		return halt
	}
	return proceed
}

// retryStage classifies the answer (pkg/slack's table of codes). A success
// or a permanent refusal goes on, to be recorded. The others are retried,
// without limit: a 429 pauses the bucket it came from and the lane keeps
// its turn; refused credentials hold the whole workspace back; a transient
// failure backs the lane off.
type retryStage struct {
	n     *Notifier
	dest  string
	mode  string
	posts *bucket // the destination's posts
}

func (s retryStage) exec(_ context.Context, d *delivery) verdict {
	n, l, st, err := s.n, d.lane, d.step, d.err
	calls := func(outcome string) { n.metrics.calls.WithLabelValues(s.mode, st.Kind, outcome).Inc() }
	switch kind := slack.KindOf(err); {
	case err == nil:
		calls("ok")
		return proceed
	case kind == slack.RateLimited:
		calls("rate_limited")
		ra := retryAfter(err)
		n.log.Warn("rate limited; waiting for Retry-After", "destination", s.dest, "step", st.Kind,
			"retryAfter", ra.String())
		var se *slack.Error
		if asSlack(err, &se) && n.pace[se.Method] != nil {
			n.pace[se.Method].pauseFor(ra) // a method limited per workspace
		} else {
			s.posts.pauseFor(ra) // this channel's posts
		}
		return keepTurn
	case kind == slack.Credentials:
		calls("credentials")
		wait := n.auth.fail()
		n.log.Error("Slack refuses the workspace's credentials; every step waits and is retried", "destination", s.dest,
			"incident", l.Incident, "step", st.Kind, "transition", st.Key, "in", wait.String(), "error", err)
		return requeue
	case kind == slack.Transient:
		calls("transient")
		wait := d.sched.backOff()
		n.log.Warn("delivery failed; will retry", "destination", s.dest, "incident", l.Incident, "step", st.Kind,
			"transition", st.Key, "in", wait.String(), "error", err)
		return requeue
	default:
		calls("permanent")
		return proceed
	}
}

// recordStage writes the step's outcome to the ledger at once: a
// slack_message_posted or _updated for a success, a notification_failed
// for a permanent refusal. The time between the answer and this entry is
// the only window in which a crash makes the step be sent again.
type recordStage struct {
	n    *Notifier
	mode string
}

func (s recordStage) exec(_ context.Context, d *delivery) verdict {
	var ok bool
	if d.err == nil {
		ok = s.n.recordSent(d.lane, d.step, d.sent, s.mode, d.answered)
	} else {
		ok = s.n.recordFailed(d.lane, d.step, s.mode, d.err)
	}
	if !ok {
		return halt
	}
	if d.step.Kind == StepRoot {
		s.n.kickGroup(d.lane) // members wait for a shared root
	}
	return proceed
}

// repairStage removes copies of a step posted in doubt where it could not
// be looked up first (doubt.go), now that its message is recorded.
type repairStage struct{ n *Notifier }

func (s repairStage) exec(ctx context.Context, d *delivery) verdict {
	if d.err == nil && !d.sched.repair.IsZero() {
		s.n.repair(ctx, d.lane, d.step, d.sent, d.sched.repair)
		d.sched.repair = time.Time{}
	}
	return proceed
}

// settleStage ends a step that is recorded: its delivery time is observed,
// the lane's backoff starts over, and a Web API success opens the
// workspace's credentials gate. The lane then goes on to its next step.
type settleStage struct {
	n    *Notifier
	mode string
}

func (s settleStage) exec(_ context.Context, d *delivery) verdict {
	if d.err == nil {
		s.n.observeDelivery(d.step)
	}
	d.sched.reset()
	if d.err == nil && s.mode == ModeWebAPI {
		s.n.auth.ok()
	}
	return requeue
}
