package sms

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/pkg/logging"
)

// Simulator modes, switched at run time (PUT /v1/simulator): ok answers as
// configured (providers.sim), fail refuses every send, slow adds latency,
// flaky fails a fraction of sends.
const (
	SimOK    = "ok"
	SimFail  = "fail"
	SimSlow  = "slow"
	SimFlaky = "flaky"
)

// SimModes lists the simulator's modes.
func SimModes() []string { return []string{SimOK, SimFail, SimSlow, SimFlaky} }

// SimMode is the simulator's run-time mode.
type SimMode struct {
	Mode string `json:"mode"`
	// Classification is what fail and flaky answer (default transient).
	Classification Classification `json:"classification,omitempty"`
	// Rate is the fraction of sends flaky fails (default 0.5).
	Rate float64 `json:"rate,omitempty"`
	// Latency is what slow adds to each send (default 3s), as a Go duration.
	Latency string `json:"latency,omitempty"`
	// Since is when the mode was set (zero: the default since start).
	Since time.Time `json:"since,omitzero"`
}

// Normalize checks a mode and fills in its defaults; an error names the
// field at fault.
func (m *SimMode) Normalize() error {
	if m.Mode == "" {
		m.Mode = SimOK
	}
	if !slices.Contains(SimModes(), m.Mode) {
		return fmt.Errorf("mode: %q is not one of ok, fail, slow, flaky", m.Mode)
	}
	fails := m.Mode == SimFail || m.Mode == SimFlaky
	switch {
	case !fails && m.Classification != "":
		return fmt.Errorf("classification: only fail and flaky fail sends")
	case fails && m.Classification == "":
		m.Classification = Transient
	case fails && (m.Classification == OK || !slices.Contains(Classifications(), m.Classification)):
		return fmt.Errorf("classification: %q is not a failure classification (%s)", m.Classification, joinClasses())
	}
	switch {
	case m.Mode != SimFlaky && m.Rate != 0:
		return errors.New("rate: only flaky has a rate")
	case m.Mode == SimFlaky && m.Rate == 0:
		m.Rate = 0.5
	case m.Rate < 0 || m.Rate > 1:
		return fmt.Errorf("rate: %v is not between 0 and 1", m.Rate)
	}
	switch {
	case m.Mode != SimSlow && m.Latency != "":
		return errors.New("latency: only slow adds latency")
	case m.Mode == SimSlow && m.Latency == "":
		m.Latency = "3s"
	case m.Mode == SimSlow:
		if d, err := time.ParseDuration(m.Latency); err != nil || d <= 0 || d > time.Minute {
			return fmt.Errorf("latency: %q is not a duration between 0 and 1m", m.Latency)
		}
	}
	return nil
}

// OutboxEntry is one message the simulator answered, as its outbox shows it.
type OutboxEntry struct {
	Time  time.Time `json:"time"`
	To    string    `json:"to"` // masked
	Route string    `json:"route"`
	// Text is the message with its code: the simulator's codes reach no one,
	// so they are not secrets.
	Text           string         `json:"text"`
	Classification Classification `json:"classification"`
}

// outboxSize bounds the outbox: it shows recent messages, not a history.
const outboxSize = 50

// Simulator is the simulated provider: it answers after a configurable
// latency and fails a configurable fraction of sends, as configured, or as
// its run-time mode says. It sends nothing. It keeps the recent messages
// the adapter marks Visible (demo mode, test numbers) in its outbox.
type Simulator struct {
	cfg  SimConfig
	sent atomic.Uint64

	mu     sync.Mutex
	mode   SimMode
	outbox []OutboxEntry // oldest first
}

// NewSim returns the simulated provider, in mode ok.
func NewSim(cfg SimConfig) *Simulator { return &Simulator{cfg: cfg, mode: SimMode{Mode: SimOK}} }

// Name is the provider's name.
func (s *Simulator) Name() string { return Sim }

// Mode returns the run-time mode.
func (s *Simulator) Mode() SimMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches the run-time mode; it is checked and completed first.
func (s *Simulator) SetMode(m SimMode, now time.Time) (SimMode, error) {
	if err := m.Normalize(); err != nil {
		return m, err
	}
	m.Since = now.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
	return m, nil
}

// Outbox returns the recent visible messages, newest first.
func (s *Simulator) Outbox() []OutboxEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]OutboxEntry, 0, len(s.outbox))
	for i := len(s.outbox) - 1; i >= 0; i-- {
		out = append(out, s.outbox[i])
	}
	return out
}

// Send answers one message as the mode says.
func (s *Simulator) Send(ctx context.Context, m Message) Result {
	start := time.Now()
	mode := s.Mode()
	d := s.cfg.Latency.D()
	if j := s.cfg.Jitter.D(); j > 0 {
		d += rand.N(j)
	}
	if mode.Mode == SimSlow {
		extra, _ := time.ParseDuration(mode.Latency) // checked by SetMode
		d += extra
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return Result{Class: Transient, Error: "timeout: " + ctx.Err().Error(), Latency: time.Since(start)}
		}
	}
	res := s.answer(mode, m)
	res.Latency = time.Since(start)
	if m.Visible {
		s.record(m, res.Class)
	}
	return res
}

// answer is the mode's answer, or the configuration's in mode ok.
func (s *Simulator) answer(mode SimMode, m Message) Result {
	n := s.sent.Add(1)
	var fails bool
	class := Classification(s.cfg.FailWith)
	switch mode.Mode {
	case SimFail:
		fails, class = true, mode.Classification
	case SimFlaky:
		fails, class = rand.Float64() < mode.Rate, mode.Classification
	default:
		fails = s.cfg.FailureRate > 0 && (len(s.cfg.FailRoutes) == 0 || slices.Contains(s.cfg.FailRoutes, m.Route)) &&
			rand.Float64() < s.cfg.FailureRate
	}
	if !fails {
		return Result{Class: OK, StatusCode: 200, ProviderRequestID: fmt.Sprintf("sim-%d", n)}
	}
	status := 400
	if class == Transient {
		status = 503
	}
	return Result{Class: class, StatusCode: status, ProviderCode: "sim", Error: "simulated " + string(class)}
}

func (s *Simulator) record(m Message, class Classification) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.outbox) == outboxSize {
		s.outbox = slices.Delete(s.outbox, 0, 1)
	}
	s.outbox = append(s.outbox, OutboxEntry{Time: time.Now().UTC(), To: logging.MaskPhone(m.To), Route: m.Route,
		Text: m.Text, Classification: class})
}
