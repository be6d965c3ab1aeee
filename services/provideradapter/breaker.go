package provideradapter

import (
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/sony/gobreaker/v2"

	"github.com/heraldhq/herald/pkg/sms"
)

// errTransient marks a call that counts against the provider's circuit:
// only transient failures (5xx, timeouts) say the provider is unwell; a
// rejected template or an invalid number says nothing about it.
var errTransient = errors.New("transient provider failure")

// breakers holds one circuit breaker per provider and route, made on first use.
type breakers struct {
	cfg *sms.Config
	m   *metrics
	log *slog.Logger
	mu  sync.Mutex
	cbs map[string]*gobreaker.CircuitBreaker[sms.Result]
}

func newBreakers(cfg *sms.Config, m *metrics, log *slog.Logger) *breakers {
	return &breakers{cfg: cfg, m: m, log: log, cbs: map[string]*gobreaker.CircuitBreaker[sms.Result]{}}
}

func (b *breakers) get(provider, route string) *gobreaker.CircuitBreaker[sms.Result] {
	key := provider + "/" + route
	b.mu.Lock()
	defer b.mu.Unlock()
	if cb, ok := b.cbs[key]; ok {
		return cb
	}
	c := b.cfg.Common(provider).Breaker
	b.m.setCircuit(provider, route, circuitClosed)
	cb := gobreaker.NewCircuitBreaker[sms.Result](gobreaker.Settings{
		Name:        key,
		MaxRequests: 1,
		Timeout:     c.OpenFor.D(),
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= uint32(c.Failures) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.m.setCircuit(provider, route, circuitState(to))
			b.log.Warn("provider circuit "+to.String(), "provider", provider, "route", route, "from", from.String())
		},
	})
	b.cbs[key] = cb
	return cb
}

// call sends through the provider's circuit; open is true when the circuit
// refused the call (nothing was sent).
func (b *breakers) call(p sms.Provider, route string, send func() sms.Result) (r sms.Result, open bool) {
	r, err := b.get(p.Name(), route).Execute(func() (sms.Result, error) {
		res := send()
		if res.Class == sms.Transient {
			return res, errTransient
		}
		return res, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return sms.Result{Class: sms.Transient, Error: "circuit open: " + p.Name() + " " + route + " is failing; not called"}, true
	}
	return r, false
}

// circuitState names a breaker state as herald_provider_circuit_state's
// state label does (gobreaker says "half-open").
func circuitState(s gobreaker.State) string {
	switch s {
	case gobreaker.StateHalfOpen:
		return circuitHalfOpen
	case gobreaker.StateOpen:
		return circuitOpen
	}
	return circuitClosed
}

// reset closes every circuit of a provider: the next call makes a new
// breaker. The simulator's circuits are reset when its mode is switched, a
// new behaviour chosen by an operator, so that "back to ok" is seen at once
// rather than after openFor.
func (b *breakers) reset(provider string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for key := range b.cbs {
		if p, route, _ := strings.Cut(key, "/"); p == provider {
			delete(b.cbs, key)
			b.m.setCircuit(provider, route, circuitClosed)
		}
	}
}
