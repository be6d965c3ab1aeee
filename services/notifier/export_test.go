package notifier

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// Access to the delivery pipeline's stages for their unit tests
// (stages_test.go), on a notifier that is built and not started.

// Verdict is what a stage decides about a step.
type Verdict = verdict

// Verdicts.
const (
	Proceed  = proceed
	Requeue  = requeue
	KeepTurn = keepTurn
	Idle     = idle
	Halt     = halt
)

// Delivery is a step on its way through a pipeline.
type Delivery = delivery

// Stage runs one stage on a delivery.
type Stage func(context.Context, *Delivery) Verdict

// Pipeline is one destination's pipeline, as its worker composes it.
type Pipeline struct{ stages []stage }

// Pipeline builds the pipeline of dest (its worker is not started).
func (n *Notifier) Pipeline(dest string) *Pipeline {
	return &Pipeline{stages: newWorker(n, dest).stages}
}

// Stage is the pipeline's stage of the type named ("dedupStage", …), nil
// when it has none.
func (p *Pipeline) Stage(name string) Stage {
	for _, s := range p.stages {
		if reflect.TypeOf(s).Name() == name {
			return s.exec
		}
	}
	return nil
}

// Names are the pipeline's stages, in order.
func (p *Pipeline) Names() []string {
	var out []string
	for _, s := range p.stages {
		out = append(out, reflect.TypeOf(s).Name())
	}
	return out
}

// PostsPausedUntil is when the destination's posts bucket lets posts go
// after a 429.
func (p *Pipeline) PostsPausedUntil() time.Time {
	for _, s := range p.stages {
		if ps, ok := s.(paceStage); ok {
			return ps.posts.paused()
		}
	}
	return time.Time{}
}

// Fold folds events into the notifier's state, as if read from its streams.
func (n *Notifier) Fold(events ...*event.Event) {
	for _, e := range events {
		n.apply(e)
	}
}

// NewDelivery starts the delivery of a step of the lane of incident in
// dest (nil lane when there is none), with a fresh retry state.
func (n *Notifier) NewDelivery(incident, dest string) *Delivery {
	n.mu.Lock()
	l := n.state.Lanes[laneKey{incident, dest}]
	n.mu.Unlock()
	return &delivery{lane: l, sched: newLaneSched(&sync.Mutex{}, n.cfg.Retry)}
}

// PausedUntil is when the workspace's bucket of a method lets calls go
// after a 429.
func (n *Notifier) PausedUntil(method string) time.Time { return n.pace[method].paused() }

// AuthUntil is when the workspace's credentials gate lets the next call go.
func (n *Notifier) AuthUntil() time.Time { return n.auth.untilTime() }

func (d *delivery) Lane() *Lane      { return d.lane }
func (d *delivery) Step() *Step      { return d.step }
func (d *delivery) SetStep(st *Step) { d.step = st }

// Answer is what the sink or the look-up answered.
func (d *delivery) Answer() (Sent, error) { return d.sent, d.err }

// Answered reports whether the step has its answer.
func (d *delivery) Answered() bool { return !d.answered.IsZero() }

// SetAnswer gives the step an answer, as the sink would.
func (d *delivery) SetAnswer(s Sent, err error) { d.sent, d.err, d.answered = s, err, time.Now() }

// Attempt is the step's recorded attempt (ok: it has one).
func (d *delivery) Attempt() (id string, unchecked, ok bool) {
	if d.attempt == nil {
		return "", false, false
	}
	return d.attempt.id, d.attempt.unchecked, true
}

// SetAttempt marks the step as attempted at the time given.
func (d *delivery) SetAttempt(at time.Time) { d.attempt = &attempt{id: stepID(d.lane, d.step), at: at} }

func (d *delivery) NotBefore() time.Time      { return d.sched.notBefore }
func (d *delivery) Refused(id string) bool    { return d.sched.refused[id] }
func (d *delivery) Repair() time.Time         { return d.sched.repair }
func (d *delivery) SetRepair(since time.Time) { d.sched.repair = since }

// SetSilencer wires the "Silence 1 h" button to f (before Start).
func (n *Notifier) SetSilencer(f func(ctx context.Context, incidentID, by string, d time.Duration) error) {
	n.silencer = silencerFunc(f)
}

type silencerFunc func(ctx context.Context, incidentID, by string, d time.Duration) error

func (f silencerFunc) SilenceIncident(ctx context.Context, incidentID, by string, d time.Duration) error {
	return f(ctx, incidentID, by, d)
}
