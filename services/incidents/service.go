package incidents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/pkg/lease"
	"github.com/heraldhq/herald/streams"
)

// LeaseName is the key of the incident writer's lease in lease.Bucket.
const LeaseName = "incident"

// Service runs the incident projection live. Several processes may run it:
// all fold the log and answer the API, and the one holding the lease
// (LeaseName) is the active writer — the only one to publish transitions,
// clock ticks and rule sets and to save the checkpoint. The others are hot
// standbys (see lead).
type Service struct {
	cfg   Config
	b     *bus.Bus
	log   *slog.Logger
	m     *metrics
	ckpt  *checkpoints
	lease *lease.Lease
	// control answers operators' requests (herald incidents rebuild).
	control *nats.Subscription

	// active is set while this process holds the lease and has taken over
	// (checkpoint fence refreshed, rules recorded).
	active atomic.Bool

	mu         sync.RWMutex
	eng        *incident.Engine
	caughtUp   bool
	tickAt     time.Time // when the tick in flight was published (zero: none)
	outbox     []queued
	lastCkpt   uint64
	ckptCost   time.Duration // how long the last checkpoint held the projection
	ckptAt     time.Time
	configured *incident.Rules
	rebuildMu  sync.Mutex

	// validated is the last sequence whose event was checked in full (and
	// dead-lettered if invalid): the fold itself reads only the fields its
	// rules use, and a rebuild must not pay for, or repeat, the check.
	validated atomic.Uint64

	kick    chan struct{} // wakes the publisher
	pubMu   sync.Mutex    // one publisher of the outbox at a time
	runMu   sync.Mutex    // serialises start, stop and rebuild of the reader
	stopRun context.CancelFunc
	runWG   sync.WaitGroup
	bg      context.CancelFunc
	bgWG    sync.WaitGroup

	stopLease context.CancelFunc
	leaseDone chan struct{}
	firstLead chan error // the outcome of the first takeover
}

// queued is a transition to publish, with the sequence of the event whose
// fold produced it: a standby forgets those the active one's checkpoint
// covers.
type queued struct {
	e   *event.Event
	seq uint64
}

// New builds the service; Start runs it.
func New(cfg Config, b *bus.Bus, log *slog.Logger, reg *prometheus.Registry) (*Service, error) {
	b.Need(streams.Events, streams.Incidents, streams.DLQ, "KV_"+Bucket)
	rules, err := cfg.CompileRules(b.Catalog)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The projection dead-letters the invalid raw facts it reads (inspect).
	b.Metrics().InitChecked(deadLetterConsumer, b.Receivable(streams.Events))
	var r prometheus.Registerer // (nil: unregistered, not a nil *Registry)
	if reg != nil {
		r = reg
	}
	return &Service{cfg: cfg, b: b, log: log.With("component", "incident"), m: newMetrics(r, b.Catalog),
		configured: rules, kick: make(chan struct{}, 1)}, nil
}

func (s *Service) engineOptions() incident.Options {
	return incident.Options{Catalog: s.b.Catalog, KeepResolved: s.cfg.KeepResolved}
}

// Start restores the last checkpoint, starts folding, and competes for the
// writer's lease; once it wins, it records the configured rules and
// publishes, ticks and checkpoints.
func (s *Service) Start(ctx context.Context) error {
	ck, err := openCheckpoints(ctx, s.b.JS)
	if err != nil {
		return err
	}
	s.ckpt = ck
	kv, err := s.b.JS.KeyValue(ctx, lease.Bucket)
	if err != nil {
		return fmt.Errorf("lease bucket %s: %w", lease.Bucket, err)
	}
	if s.lease, err = lease.New(kv, LeaseName, holderName(), lease.DefaultTTL, s.log); err != nil {
		return err
	}
	if err := s.lease.Check(ctx); err != nil {
		return err
	}
	s.restore(ctx)
	if s.control, err = s.serveControl(); err != nil {
		return fmt.Errorf("incident control subject: %w", err)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bg = cancel
	s.bgWG.Add(3)
	go s.publishLoop(bg)
	go s.clockLoop(bg)
	go s.checkpointLoop(bg)
	s.startReader()
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopLease, s.leaseDone = stop, make(chan struct{})
	s.firstLead = make(chan error, 1)
	go func() {
		defer close(s.leaseDone)
		if err := s.lease.Run(lctx, s.lead); err != nil {
			s.log.Error("the incident writer's lease cannot be used; this process stays a standby", "error", err)
		}
	}()
	// Know the role before serving: a writer has recorded its rules in the
	// log, so the events that follow are folded through them.
	select {
	case <-s.lease.Attempted():
	case <-ctx.Done():
		return errors.Join(ctx.Err(), s.Stop(context.WithoutCancel(ctx)))
	}
	if s.lease.Term() == 0 {
		s.log.Info("standby: another process is the incident writer; folding the log to take over")
		return nil
	}
	select {
	case err := <-s.firstLead:
		if err != nil {
			return errors.Join(err, s.Stop(context.WithoutCancel(ctx)))
		}
	case <-ctx.Done():
		return errors.Join(ctx.Err(), s.Stop(context.WithoutCancel(ctx)))
	}
	return nil
}

// restore starts the projection from the last checkpoint, or from the
// start of the log if there is none it can use.
func (s *Service) restore(ctx context.Context) {
	s.eng = incident.NewEngine(s.engineOptions())
	snap, m, err := s.ckpt.load(ctx)
	switch {
	case err != nil:
		s.log.Warn("checkpoint unreadable; rebuilding from the start of the log", "error", err)
	case snap != nil:
		eng, err := incident.ReadSnapshot(snap, s.engineOptions())
		if err != nil {
			s.log.Warn("checkpoint not restorable; rebuilding from the start of the log", "error", err)
			return
		}
		s.eng, s.lastCkpt = eng, m.Seq
		s.validated.Store(m.Seq)
		s.log.Info("checkpoint restored", "seq", m.Seq, "bytes", m.Size, "savedAt", m.SavedAt)
	}
}

// tookOver reports the first takeover's outcome to Start.
func (s *Service) tookOver(err error) {
	select {
	case s.firstLead <- err:
	default:
	}
}

// holderName names this process in the lease, for people.
func holderName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// lead is the active writer's term: from the moment this process holds the
// lease until ctx says it lost it (or is stopping).
//
// A standby has folded the log all along, keeping every transition its fold
// produced since the last checkpoint of the active writer (a checkpoint is
// saved only once everything folded before it is published). Taking over is
// then only to publish that queue again — INCIDENTS refuses what the old
// writer already published (write-once subjects), and stores what it did
// not — and to carry on: nothing is missed, nothing stored twice, and no
// refold is needed, so the takeover costs the lease's expiry (at most 6 s
// after a crash) plus one round of publishes.
func (s *Service) lead(ctx context.Context) error {
	term := s.lease.Term()
	m, err := s.ckpt.refresh(ctx)
	if err != nil {
		s.tookOver(err)
		return fmt.Errorf("incident takeover: %w", err)
	}
	s.mu.Lock()
	if m != nil {
		s.lastCkpt = m.Seq
	}
	s.tickAt = time.Time{}
	rs := s.configured
	s.mu.Unlock()
	if err := s.recordRules(ctx, rs); err != nil {
		s.tookOver(err)
		return fmt.Errorf("incident takeover: %w", err)
	}
	s.active.Store(true)
	s.m.leader.Set(1)
	s.tookOver(nil)
	s.log.Info("active: this process is the incident writer", "term", term, "pending", s.pending())
	s.wake()
	<-ctx.Done()
	s.active.Store(false)
	s.m.leader.Set(0)
	if cause := context.Cause(ctx); errors.Is(cause, lease.ErrLost) {
		s.log.Warn("standby: the incident writer's lease was lost", "term", term, "cause", cause)
	} else {
		s.log.Info("standby: the incident writer's lease is given up", "term", term)
	}
	return nil
}

// Active reports whether this process is the incident writer.
func (s *Service) Active() bool { return s.active.Load() }

func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Stop stops reading; the active writer publishes what is pending and saves
// a checkpoint; then the lease is released, so a standby takes over at once.
func (s *Service) Stop(ctx context.Context) error {
	if s.control != nil {
		_ = s.control.Unsubscribe()
	}
	s.stopReader()
	s.bg()
	s.bgWG.Wait()
	var errs []error
	if s.Active() {
		if err := s.flush(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := s.checkpoint(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.stopLease != nil {
		s.stopLease()
		<-s.leaseDone
	}
	return errors.Join(errs...)
}

// recordRules publishes rs as the rules in force unless the log's last
// rule set is already the same.
func (s *Service) recordRules(ctx context.Context, rs *incident.Rules) error {
	st, err := s.b.JS.Stream(ctx, streams.Events)
	if err != nil {
		return err
	}
	subj := "events." + incident.TypeRulesLoaded
	last, err := st.GetLastMsgForSubject(ctx, subj)
	if err == nil {
		e, ferr := event.FromMsg(last.Subject, last.Header, last.Data)
		if ferr == nil && s.b.Catalog.Decode(e) == nil {
			if rl, ok := event.As[event.IncidentRulesLoaded](e); ok && rl.Fingerprint == rs.Fingerprint {
				return nil
			}
		}
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("incident rules in the log: %w", err)
	}
	e := event.New(incident.Source, event.IncidentRulesLoaded{
		Fingerprint: rs.Fingerprint, Source: rs.Source, Rules: rs.Names(), Document: rs.Document,
	})
	if _, err := s.b.Publish(ctx, e); err != nil {
		return fmt.Errorf("record incident rules: %w", err)
	}
	s.log.Info("incident rules recorded in the log", "fingerprint", rs.Fingerprint[:12], "rules", rs.Names(), "source", rs.Source)
	return nil
}

// Reload applies the incident section of a new configuration: the new rules
// are recorded in the log and take effect where they sit in it, keeping the
// projection's state (see pkg/incident: swapRules).
func (s *Service) Reload(ctx context.Context, f *config.File) error {
	cfg, err := LoadConfig(f)
	if err != nil {
		return err
	}
	rs, err := cfg.CompileRules(s.b.Catalog)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.configured = rs
	s.mu.Unlock()
	if !s.Active() {
		return nil // recorded when this process becomes the writer
	}
	return s.recordRules(ctx, rs)
}

func (s *Service) startReader() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	s.stopRun = cancel
	s.runWG.Add(1)
	go s.readLoop(ctx)
}

func (s *Service) stopReader() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.stopRun != nil {
		s.stopRun()
		s.runWG.Wait()
		s.stopRun = nil
	}
}

// Rebuild throws the projection away and folds the log again from its
// first event. Transitions it publishes again are refused by INCIDENTS
// (write-once subjects), so nothing is notified twice. A standby rebuilds
// its own projection only; the active writer also forgets the checkpoint.
func (s *Service) Rebuild(ctx context.Context) error {
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	s.stopReader()
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.pubMu.Lock() // no publication in progress trims the new queue
	s.mu.Lock()
	s.eng = incident.NewEngine(s.engineOptions())
	s.outbox, s.caughtUp, s.tickAt, s.lastCkpt = nil, false, time.Time{}, 0
	s.mu.Unlock()
	s.pubMu.Unlock()
	if s.Active() {
		if err := s.ckpt.clear(ctx, s.lease.Term()); err != nil {
			return err
		}
	}
	s.log.Info("rebuilding the incident projection from the start of the log")
	s.startReader()
	return nil
}

// readLoop folds the log from the projection's position on, for as long as
// the reader runs: a read that fails (the stream lost, the consumer gone)
// is started again a second later from where the fold is.
func (s *Service) readLoop(ctx context.Context) {
	defer s.runWG.Done()
	_, _ = backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, s.read(ctx) },
		untilStopped(s.log, "reading the event log failed; retrying", backoff.NewConstantBackOff(time.Second))...)
}

// errReaderStopped: the event log's reader ended without an error, though
// it follows the log.
var errReaderStopped = errors.New("the event log's reader stopped")

// read folds the log from the projection's position until the read fails.
func (s *Service) read(ctx context.Context) error {
	s.mu.RLock()
	from := s.eng.Seq() + 1
	s.mu.RUnlock()
	// Nothing new since the checkpoint: caught up already (the reader
	// only learns it from a message), so that clock ticks can flow.
	if st, err := s.b.JS.Stream(ctx, streams.Events); err == nil {
		if info, err := st.Info(ctx); err == nil && info.State.LastSeq < from {
			s.mu.Lock()
			if s.eng.Seq()+1 == from {
				s.caughtUp = true
			}
			s.mu.Unlock()
		}
	}
	err := incident.Read(ctx, s.b.JS, incident.ReadOptions{FromSeq: from, Follow: true, MaxSkew: s.cfg.MaxClockSkew.D(),
		Inspect: func(m jetstream.Msg, seq uint64) { s.inspect(ctx, m, seq) }}, s.apply)
	if err == nil {
		return errReaderStopped
	}
	return err
}

// deadLetterConsumer names the projection in the DLQ.
const deadLetterConsumer = "incident"

// inspect checks an event in full the first time the projection meets it.
// As the one service that reads every raw fact, it dead-letters those that
// are not valid events, so that a producer's bad publication is surfaced
// even when no other service consumes its type. The fold is unaffected: it
// treats such an event the same way live and in a rebuild.
func (s *Service) inspect(ctx context.Context, m jetstream.Msg, seq uint64) {
	if seq <= s.validated.Load() {
		return
	}
	defer s.validated.Store(seq)
	t, reason, err := s.b.Check(m)
	if err == nil {
		return
	}
	meta, merr := m.Metadata()
	if merr != nil {
		return
	}
	typ := "unknown"
	if _, derr := s.b.Catalog.Def(t); derr == nil {
		typ = string(t)
	}
	if derr := s.b.DeadLetter(ctx, m, meta, deadLetterConsumer, reason, err); derr != nil {
		s.log.Warn("an invalid event could not be dead-lettered", "seq", seq, "reason", reason, "error", derr)
		return
	}
	s.b.Metrics().DeadLettered.WithLabelValues(deadLetterConsumer, typ, reason).Inc()
	s.log.Warn("invalid event dead-lettered", "seq", seq, "reason", reason, "error", err)
}

// apply folds one event and queues the transitions it produced.
func (s *Service) apply(rec *incident.Record, pos incident.Position) error {
	s.mu.Lock()
	if rec.Seq <= s.eng.Seq() {
		s.mu.Unlock()
		return nil // already folded (a reader restarted behind)
	}
	s.eng.Apply(rec)
	out := s.eng.Drain()
	if rec.Type == incident.TypeClockTick {
		s.tickAt = time.Time{}
	}
	s.caughtUp = pos.Pending == 0
	for _, e := range out {
		s.outbox = append(s.outbox, queued{e: e, seq: rec.Seq})
	}
	s.mu.Unlock()
	s.m.events.Inc()
	s.m.lastSeq.Set(float64(rec.Seq))
	if len(out) > 0 {
		s.wake()
	}
	return nil
}

// publishLoop publishes the outbox in order, each transition once
// (PublishOnce on its own subject), retrying while JetStream is unavailable.
func (s *Service) publishLoop(ctx context.Context) {
	defer s.bgWG.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		_, _ = backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, s.flush(ctx) },
			untilStopped(s.log, "publishing incident transitions failed; retrying", publishBackOff())...)
	}
}

// publishPending publishes the transitions queued so far, if this process
// is the writer (a standby keeps them for a takeover).
func (s *Service) publishPending(ctx context.Context) (int, error) {
	if !s.Active() {
		return 0, nil
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.RLock()
	pending := append([]queued(nil), s.outbox...)
	s.mu.RUnlock()
	for i, q := range pending {
		e := q.e
		ack, err := s.b.PublishOnce(ctx, e)
		if err != nil && !errors.Is(err, bus.ErrUnavailable) {
			// A transition its own schema refuses is a bug, not an outage:
			// log it loudly and go on rather than hold every later one back.
			s.log.Error("incident transition refused by its schema; skipped", "type", e.Type, "id", e.ID, "error", err)
			s.m.transitions.WithLabelValues(string(e.Type), "invalid").Inc()
			continue
		}
		if err != nil {
			s.mu.Lock()
			s.outbox = s.outbox[i:]
			s.mu.Unlock()
			return i, err
		}
		s.m.transitions.WithLabelValues(string(e.Type), fmt.Sprint(ack.Duplicate)).Inc()
		if !ack.Duplicate {
			s.log.Info("incident transition", "type", e.Type, "id", e.ID, "seq", ack.Sequence)
		}
	}
	s.mu.Lock()
	s.outbox = s.outbox[len(pending):]
	s.mu.Unlock()
	return len(pending), nil
}

// forget drops the queued transitions of events up to seq: the active
// writer's checkpoint at seq says they are published. It waits for a
// publication in progress (a takeover starting), which trims the queue by
// count.
func (s *Service) forget(seq uint64) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.outbox) && s.outbox[n].seq <= seq {
		n++
	}
	s.outbox = s.outbox[n:]
}

// flush publishes what is pending, within ctx.
func (s *Service) flush(ctx context.Context) error {
	for {
		n, err := s.publishPending(ctx)
		if err != nil {
			return fmt.Errorf("incident: %d transitions not published: %w", s.pending(), err)
		}
		if n == 0 {
			return nil
		}
	}
}

func (s *Service) pending() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.outbox)
}

// clockLoop records the wall clock in the log when the projection waits on
// time: once the wall clock passes its next deadline and no event has moved
// event time past it, the active writer publishes a clock_tick. The
// projection advances only when it reads the tick back, so a rebuild sees
// time advance at the same point of the log. A tick's id is derived from
// its deadline, so that a resent tick, or one a new writer sends for the
// deadline its predecessor just ticked, is stored once (Nats-Msg-Id).
func (s *Service) clockLoop(ctx context.Context) {
	defer s.bgWG.Done()
	t := time.NewTicker(s.cfg.TickInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.Active() {
			continue
		}
		now := time.Now()
		s.mu.Lock()
		due := s.eng.NextDeadline()
		send := s.caughtUp && due != 0 && now.UnixNano() >= due &&
			(s.tickAt.IsZero() || now.Sub(s.tickAt) > 5*time.Second) // a lost tick is sent again
		if send {
			s.tickAt = now
		}
		s.mu.Unlock()
		if !send {
			continue
		}
		e := event.New(incident.Source, event.ClockTick{Projection: "incidents", Deadline: time.Unix(0, due).UTC()},
			event.WithTime(now.UTC()), event.WithID(tickID(due)))
		acks, err := s.b.Publish(ctx, e)
		if err != nil {
			s.log.Warn("publishing a clock tick failed", "error", err)
			s.mu.Lock()
			s.tickAt = time.Time{}
			s.mu.Unlock()
			continue
		}
		if !acks[0].Duplicate {
			s.m.ticks.Inc()
		}
	}
}

// tickID is the id of the clock tick for a deadline (ns since the epoch).
func tickID(due int64) string { return fmt.Sprintf("clock_tick.incidents.%d", due) }

func (s *Service) checkpointLoop(ctx context.Context) {
	defer s.bgWG.Done()
	t := time.NewTicker(s.cfg.CheckpointInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.Active() {
			s.followCheckpoint(ctx)
			continue
		}
		if err := s.checkpointIf(ctx, true); err != nil {
			s.log.Warn("checkpoint failed", "error", err)
		}
	}
}

// followCheckpoint is a standby's: it reads the active writer's checkpoint
// and forgets the transitions it covers.
func (s *Service) followCheckpoint(ctx context.Context) {
	m, err := s.ckpt.refresh(ctx)
	if err != nil {
		s.log.Debug("standby: the checkpoint is unreadable", "error", err)
		return
	}
	if m != nil {
		s.forget(m.Seq)
	}
}

// checkpoint saves the projection if it moved, and only when every
// transition it produced is published: a restart from the checkpoint then
// never misses one (and one it repeats is refused by INCIDENTS).
func (s *Service) checkpoint(ctx context.Context) error {
	return s.checkpointIf(ctx, false)
}

// checkpointIf saves a checkpoint; unless forced, it waits at least ten
// times as long as the last snapshot held the projection, so that a large
// state (100,000 groups: about a second) never stalls the fold more than 10 %.
func (s *Service) checkpointIf(ctx context.Context, periodic bool) error {
	term := s.lease.Term()
	if !s.Active() || term == 0 {
		return nil // the writer's
	}
	s.mu.RLock()
	if len(s.outbox) > 0 || s.eng.Seq() == s.lastCkpt || periodic && time.Since(s.ckptAt) < 10*s.ckptCost {
		s.mu.RUnlock()
		return nil
	}
	start := time.Now()
	seq := s.eng.Seq()
	snap, err := encode(s.eng.WriteSnapshot)
	s.mu.RUnlock()
	held := time.Since(start)
	if err != nil {
		return err
	}
	m, err := s.ckpt.save(ctx, seq, snap, term)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.lastCkpt, s.ckptCost, s.ckptAt = seq, held, time.Now()
	s.mu.Unlock()
	s.m.checkpointSeconds.Observe(time.Since(start).Seconds())
	s.log.Debug("checkpoint saved", "seq", seq, "bytes", m.Size, "chunks", m.Chunks)
	return nil
}

// Ready is the readiness check: the projection has caught up with the log
// (a standby's too: it answers the API).
func (s *Service) Ready(context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.caughtUp && s.eng.Seq() == 0 {
		return nil // an empty log: nothing to catch up with
	}
	if !s.caughtUp {
		return fmt.Errorf("folding the event log (at seq %d)", s.eng.Seq())
	}
	return nil
}

// View runs f with the projection, read-only.
func (s *Service) View(f func(e *incident.Engine)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f(s.eng)
}

type metrics struct {
	events            prometheus.Counter
	lastSeq           prometheus.Gauge
	transitions       *prometheus.CounterVec
	ticks             prometheus.Counter
	checkpointSeconds prometheus.Histogram
	leader            prometheus.Gauge
}

// newMetrics creates the projection's metrics; the transition counters
// start at 0 for every incident type and outcome, so that the first of each
// is an increase.
func newMetrics(reg prometheus.Registerer, cat *event.Catalog) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		events:  f.NewCounter(prometheus.CounterOpts{Name: "herald_incident_events_total", Help: "Events folded by the incident projection."}),
		lastSeq: f.NewGauge(prometheus.GaugeOpts{Name: "herald_incident_last_seq", Help: "Last EVENTS sequence the incident projection applied."}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{Name: "herald_incident_transitions_total",
			Help: "Incident transitions published, by type and whether INCIDENTS already had them (or, invalid, refused them)."}, []string{"type", "duplicate"}),
		ticks: f.NewCounter(prometheus.CounterOpts{Name: "herald_incident_clock_ticks_total", Help: "clock_tick events published."}),
		checkpointSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "herald_incident_checkpoint_duration_seconds",
			Help: "Time to snapshot and save the incident projection.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
		leader: f.NewGauge(prometheus.GaugeOpts{Name: "herald_incident_leader",
			Help: "1 while this process is the incident writer (holds the lease), 0 while it is a standby."}),
	}
	for _, d := range cat.Defs() {
		if d.Log == event.LogIncidents {
			for _, dup := range []string{"false", "true", "invalid"} {
				m.transitions.WithLabelValues(string(d.Type), dup)
			}
		}
	}
	return m
}
