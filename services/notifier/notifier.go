// Package notifier is Herald's notifier service: a projection of incident
// transitions onto Slack. An incident's opening is posted once per
// destination; its escalations and its resolution edit that message and
// reply in its thread. Every post and edit is recorded in the NOTIFICATIONS
// ledger before the next step, and the ledger is read back at start, so a
// restart or a rebuild never posts twice what was recorded (docs/notifier.md).
package notifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/lease"
	"github.com/heraldhq/herald/pkg/slack"
	"github.com/heraldhq/herald/streams"
)

// Module is the notifier service.
var Module = fx.Module("notifier",
	fx.Provide(
		fromFx,
		fx.Annotate(func(n *Notifier, c api.Config) []api.Route { return n.Routes(int64(c.MaxBodyBytes)) },
			fx.ResultTags(`group:"routes,flatten"`)),
		fx.Annotate(func(n *Notifier) api.Check { return api.Check{Name: "notifier", Func: n.Ready} },
			fx.ResultTags(`group:"readiness"`)),
	),
	fx.Invoke(func(*Notifier) {}),
)

// Durable is the name of the notifier's consumer of INCIDENTS.
const Durable = "notifier"

// Deps are what the notifier needs besides its configuration.
type Deps struct {
	Bus *bus.Bus
	Log *slog.Logger
	// Registry receives the metrics (nil: not exported).
	Registry prometheus.Registerer
	// Stdout receives the console sink's lines (nil: os.Stdout).
	Stdout io.Writer
	// Now is the clock of Slack signature checks, acknowledgements and
	// reminders (nil: time.Now).
	Now func() time.Time
	// CrashAfterSend is a test hook, called with a step's id right after
	// the sink accepted it and before its ledger entry: true makes the
	// notifier stop there as if killed, writing nothing more for it.
	CrashAfterSend func(step string) bool
}

// Notifier is the running service.
type Notifier struct {
	cfg     Config
	bus     *bus.Bus
	log     *slog.Logger
	stdout  io.Writer
	hc      *http.Client
	slack   *slack.Client
	metrics *metrics
	now     func() time.Time
	auth    *authGate
	pace    map[string]*bucket // methods Slack limits per workspace

	crashAfterSend func(step string) bool

	mu    sync.Mutex // guards state
	state *State
	subMu sync.Mutex // serialises subscription changes
	// silences: changes and the loop announcing what they held (silence_run.go)
	silences silenceRun
	// logMu writes routing entries and acknowledgements one at a time, so
	// that they are folded in the order the ledger has them (ack.go).
	logMu sync.Mutex
	// silencer backs the root's "Silence 1 h" button (interactions.go);
	// nil: no button.
	silencer  incidentSilencer
	reminders reminderTimers

	consoleMu sync.Mutex
	workersMu sync.Mutex
	workers   map[string]*worker
	wg        sync.WaitGroup

	runCtx     context.Context // cancelled when stopping: no new step starts
	stopRun    context.CancelFunc
	hardCtx    context.Context // cancelled when the stop runs out of time
	stopHard   context.CancelFunc
	sub        *bus.Subscription
	acks       *bus.Subscription // incident_acknowledged (pagerduty.go)
	ready      atomic.Bool
	active     atomic.Bool
	stopOnce   sync.Once
	stopResult error

	// The lease (lease.go): one active notifier per event log.
	lease     *lease.Lease
	stopLease context.CancelFunc
	leaseDone chan struct{}
	firstLead chan error
	termMu    sync.Mutex
	stopping  <-chan struct{} // closed when Stop runs out of time
	termErr   error
}

type fxIn struct {
	fx.In
	LC       fx.Lifecycle
	Bus      *bus.Bus
	File     *config.File
	Log      *slog.Logger
	Registry *prometheus.Registry
	Stdout   io.Writer `name:"stdout" optional:"true"`
}

func fromFx(in fxIn) (*Notifier, error) {
	cfg := DefaultConfig()
	if err := in.File.Section("notifier", &cfg); err != nil {
		return nil, err
	}
	n, err := New(cfg, Deps{Bus: in.Bus, Log: in.Log, Registry: in.Registry, Stdout: in.Stdout})
	if err != nil {
		return nil, err
	}
	in.LC.Append(fx.Hook{OnStart: n.Start, OnStop: n.Stop})
	return n, nil
}

// New builds the notifier; Start runs it.
func New(cfg Config, d Deps) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: notifier.%w", config.ErrInvalid, err)
	}
	if err := cfg.PagerDuty.resolveKey(); err != nil {
		return nil, fmt.Errorf("%w: notifier.%w", config.ErrInvalid, err)
	}
	if len(cfg.Routes) == 0 {
		cfg.Routes = []Route{{Name: "default", Channels: []string{"console"}}}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Stdout == nil {
		d.Stdout = os.Stdout
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	d.Bus.Need(streams.Incidents, streams.Notifications, streams.DLQ)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128 // one worker per channel, all to slack.com
	n := &Notifier{
		cfg: cfg, bus: d.Bus, log: d.Log.With("component", "notifier"), stdout: d.Stdout, now: d.Now,
		hc:      &http.Client{Timeout: cfg.Slack.Timeout.D(), Transport: tr},
		metrics: newMetrics(d.Registry), state: NewState(), workers: map[string]*worker{},
		auth: newAuthGate(cfg.Retry.Initial.D(), cfg.Retry.Max.D()), pace: workspaceBuckets(cfg.RateLimit),
		silences: newSilenceRun(),
	}
	n.crashAfterSend = d.CrashAfterSend
	n.silencer = n // the root's "Silence 1 h" button creates a silence
	if cfg.Slack.BotToken != "" {
		n.slack = slack.NewClient(cfg.Slack.APIURL, cfg.Slack.BotToken, n.hc)
	}
	n.runCtx, n.stopRun = context.WithCancel(context.Background())
	n.hardCtx, n.stopHard = context.WithCancel(context.Background())
	return n, nil
}

// crash stops every worker at once, as a kill would (CrashAfterSend).
func (n *Notifier) crash() {
	n.ready.Store(false)
	n.stopRun()
	n.stopHard()
}

// Ready reports whether the notifier has rebuilt its state and consumes.
func (n *Notifier) Ready(context.Context) error {
	if !n.ready.Load() {
		return errors.New("notifier: not started")
	}
	return nil
}

// handle folds an incident transition, decides where it goes (once: the
// decision is a ledger entry), and hands it to the destinations' workers.
func (n *Notifier) handle(ctx context.Context, e *event.Event) error {
	switch e.Data.(type) {
	case event.IncidentOpened, event.IncidentEscalated, event.IncidentResolved:
	default:
		return nil
	}
	n.mu.Lock()
	if t := n.state.Apply(e); t != nil {
		t.seen = time.Now()
	}
	id, ord := incidentOf(e), 0
	if i := n.state.Timelines[id]; i != nil {
		ord = i.Latest().Ordinal
		if o, ok := subjectOrdinal(e.Subject); ok {
			ord = o
		}
	}
	n.mu.Unlock()
	if err := n.routeUpTo(ctx, id, ord); err != nil {
		return err // redelivered after a backoff
	}
	n.mu.Lock()
	lanes := append([]*Lane(nil), n.state.LanesOf(id)...)
	n.mu.Unlock()
	for _, l := range lanes {
		n.kick(l)
	}
	return nil
}

// routeUpTo decides where each of an incident's transitions up to ord goes
// that is not routed yet, in order: a transition redelivered after later
// ones (its first delivery went to a notifier that died) is routed before
// them, so a destination never joins an incident at a later transition
// than the one that brought it there.
func (n *Notifier) routeUpTo(ctx context.Context, id string, ord int) error {
	for {
		n.mu.Lock()
		var t *Transition
		if i := n.state.Timelines[id]; i != nil {
			for _, x := range i.Transitions {
				if x.Ordinal <= ord && !n.state.IsRouted(id, x.Transition) {
					t = x
					break
				}
			}
		}
		if t == nil {
			n.mu.Unlock()
			return nil
		}
		snap := t.Snapshot
		dests, matches := route(n.cfg.Routes, n.state.Subscriptions, n.state.Following(id), &snap)
		dests, matches, held := n.state.holdRouted(t, dests, matches)
		groups := n.decideGroups(t, matches)
		n.mu.Unlock()
		if err := n.recordHeld(ctx, held, t.EventID); err != nil {
			return err
		}
		if dests == nil {
			dests = []string{}
		}
		r := event.NotificationRouted{IncidentID: id, Transition: t.Transition, Destinations: dests, Matches: matches, Groups: groups}
		n.logMu.Lock()
		stored, err := n.writeOnce(ctx, ledgerEvent(r, ledgerSubject("notification_routed", id, t.Transition), t.EventID))
		if err == nil {
			n.apply(stored)
		}
		n.logMu.Unlock()
		if err != nil {
			return err
		}
	}
}

func incidentOf(e *event.Event) string {
	switch d := e.Data.(type) {
	case event.IncidentOpened:
		return d.IncidentID
	case event.IncidentEscalated:
		return d.IncidentID
	case event.IncidentResolved:
		return d.IncidentID
	}
	return ""
}

// apply folds one of the notifier's own ledger entries into the state.
func (n *Notifier) apply(e *event.Event) {
	n.mu.Lock()
	n.state.Apply(e)
	n.mu.Unlock()
}

func asSlack(err error, target **slack.Error) bool { return errors.As(err, target) }

// Snapshot of the state for the HTTP API and the slash command.
func (n *Notifier) openIncidents() []Snapshot {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.Open()
}
