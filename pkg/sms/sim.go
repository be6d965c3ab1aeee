package sms

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
)

// sim is the simulated provider: it answers after a configurable latency
// and fails a configurable fraction of sends, as configured. It sends nothing.
type sim struct {
	cfg  SimConfig
	sent atomic.Uint64
}

// NewSim returns the simulated provider.
func NewSim(cfg SimConfig) Provider { return &sim{cfg: cfg} }

func (s *sim) Name() string { return Sim }

func (s *sim) Send(ctx context.Context, m Message) Result {
	start := time.Now()
	d := s.cfg.Latency.D()
	if j := s.cfg.Jitter.D(); j > 0 {
		d += rand.N(j)
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
	n := s.sent.Add(1)
	fails := s.cfg.FailureRate > 0 && (len(s.cfg.FailRoutes) == 0 || slices.Contains(s.cfg.FailRoutes, m.Route)) &&
		rand.Float64() < s.cfg.FailureRate
	if fails {
		status := 400
		if Classification(s.cfg.FailWith) == Transient {
			status = 503
		}
		return Result{Class: Classification(s.cfg.FailWith), StatusCode: status, ProviderCode: "sim",
			Error: "simulated " + s.cfg.FailWith, Latency: time.Since(start)}
	}
	return Result{Class: OK, StatusCode: 200, ProviderRequestID: fmt.Sprintf("sim-%d", n), Latency: time.Since(start)}
}
