package notifier

import (
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// authGate holds back every Web API step while Slack refuses the
// workspace's credentials (invalid_auth, token_revoked, …): those errors are
// the same for every message, so one call per worker at a time probes them,
// with a backoff shared by the workspace, and the first success opens the
// gate for all. Nothing is given up meanwhile.
type authGate struct {
	mu    sync.Mutex
	bo    *backoff.ExponentialBackOff
	until time.Time
}

func newAuthGate(initial, maxInterval time.Duration) *authGate {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = initial, maxInterval
	return &authGate{bo: bo}
}

// fail closes the gate for the next backoff interval and returns it.
func (g *authGate) fail() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.bo.NextBackOff()
	g.until = time.Now().Add(d)
	return d
}

// ok opens the gate: the credentials work.
func (g *authGate) ok() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.until.IsZero() {
		g.bo.Reset()
		g.until = time.Time{}
	}
}

func (g *authGate) untilTime() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until
}
