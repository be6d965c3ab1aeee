package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/otp"
)

// limiter enforces an app's send limits: a token bucket per app (in this
// process: each dispatcher replica allows the configured rate), and per
// phone a resend cooldown and a count per window, kept in JetStream KV so
// that every replica and every restart sees the same history.
type limiter struct {
	kv   jetstream.KeyValue
	keys *otp.Keys
	mu   sync.Mutex
	apps map[string]*rate.Limiter
}

func newLimiter(kv jetstream.KeyValue, s *otp.Settings) *limiter {
	l := &limiter{kv: kv, keys: s.Keys, apps: map[string]*rate.Limiter{}}
	for name, a := range s.Apps {
		if a.PerApp.Rate > 0 {
			l.apps[name] = rate.NewLimiter(rate.Limit(a.PerApp.Rate), a.PerApp.Burst)
		}
	}
	return l
}

// tooMany is a 429 with Retry-After.
func tooMany(code string, wait time.Duration, format string, args ...any) *api.Error {
	secs := int(math.Ceil(wait.Seconds()))
	e := api.Errorf(http.StatusTooManyRequests, code, format, args...)
	e.Extra = map[string]any{"retryAfter": max(secs, 1)}
	return e
}

// allowApp takes a token from the app's bucket.
func (l *limiter) allowApp(a *otp.AppSettings) error {
	lim := l.apps[a.Name]
	if lim == nil {
		return nil
	}
	now := time.Now()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); !r.OK() || d > 0 {
		r.CancelAt(now)
		return tooMany("rate_limited", d, "app %s is over its limit of %g sends per second", a.Name, a.PerApp.Rate)
	}
	return nil
}

type phoneHistory struct {
	Sends []int64 `json:"sends"` // unix milliseconds, oldest first
}

// allowPhone records a send to phone if its cooldown and window allow it.
func (l *limiter) allowPhone(ctx context.Context, a *otp.AppSettings, phone string) error {
	cooldown, limit, window := a.ResendCooldown.D(), a.PerPhone.Count, a.PerPhone.Window.D()
	if cooldown <= 0 && limit == 0 {
		return nil
	}
	keep := max(cooldown, window)
	key := l.keys.Keyed("phone:" + a.Name + ":" + phone)
	// Most numbers have no recent send: try to create their history first,
	// one round trip; read and compare-and-set only when it exists.
	first, _ := json.Marshal(phoneHistory{Sends: []int64{time.Now().UnixMilli()}})
	if _, err := l.kv.Create(ctx, key, first, jetstream.KeyTTL(keep)); err == nil {
		return nil
	} else if !isConflict(err) {
		return fmt.Errorf("rate limit: %w", err)
	}
	for range 10 {
		now := time.Now()
		var h phoneHistory
		var rev uint64
		e, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("rate limit: %w", err)
		default:
			rev = e.Revision()
			_ = json.Unmarshal(e.Value(), &h)
		}
		cut := now.Add(-keep).UnixMilli()
		kept := h.Sends[:0]
		for _, t := range h.Sends {
			if t > cut {
				kept = append(kept, t)
			}
		}
		h.Sends = kept
		if n := len(h.Sends); n > 0 && cooldown > 0 {
			if wait := time.UnixMilli(h.Sends[n-1]).Add(cooldown).Sub(now); wait > 0 {
				return tooMany("resend_cooldown", wait, "a code was sent to this number less than %s ago", cooldown)
			}
		}
		if limit > 0 {
			inWindow := 0
			wcut := now.Add(-window).UnixMilli()
			for _, t := range h.Sends {
				if t > wcut {
					inWindow++
				}
			}
			if inWindow >= limit {
				oldest := h.Sends[len(h.Sends)-inWindow]
				return tooMany("phone_rate_limited", time.UnixMilli(oldest).Add(window).Sub(now),
					"%d codes were sent to this number in the last %s; the limit is %d", inWindow, window, limit)
			}
		}
		h.Sends = append(h.Sends, now.UnixMilli())
		b, _ := json.Marshal(h)
		if rev == 0 {
			_, err = l.kv.Create(ctx, key, b, jetstream.KeyTTL(keep))
		} else {
			_, err = l.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("rate limit: %w", err)
		}
	}
	return tooMany("phone_rate_limited", time.Second, "too many concurrent sends to this number")
}

// retryAfter sets the Retry-After header of a 429.
func retryAfter(w http.ResponseWriter, err error) {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
		if s, ok := ae.Extra["retryAfter"].(int); ok {
			w.Header().Set("Retry-After", strconv.Itoa(s))
		}
	}
}
