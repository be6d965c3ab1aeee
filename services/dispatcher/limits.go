package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/otp"
)

// limiter enforces an app's send limits — a rate per app, shared by every
// dispatcher process through counters in JetStream (RATE_LIMITS), and per
// phone a resend cooldown and a count per window, kept in JetStream KV — so
// that every replica and every restart sees the same history.
type limiter struct {
	bus  *bus.Bus
	kv   jetstream.KeyValue
	keys *otp.Keys
}

// rateLimitsStream holds the per-app counters (kv/rate_limits.yaml).
const rateLimitsStream = "RATE_LIMITS"

func newLimiter(b *bus.Bus, kv jetstream.KeyValue, s *otp.Settings) *limiter {
	return &limiter{bus: b, kv: kv, keys: s.Keys}
}

// tooMany is a 429 with Retry-After.
func tooMany(code string, wait time.Duration, format string, args ...any) *api.Error {
	secs := int(math.Ceil(wait.Seconds()))
	e := api.Errorf(http.StatusTooManyRequests, code, format, args...)
	e.Extra = map[string]any{"retryAfter": max(secs, 1)}
	return e
}

// appWindow is the length of the fixed windows an app's sends are counted
// in: Burst sends per window of Burst/Rate seconds allows Rate sends per
// second on average and bursts of Burst, the bounds of the token bucket
// the configuration describes (over any span T at most Burst + Rate·T).
func appWindow(l otp.AppLimit) time.Duration {
	return time.Duration(float64(max(l.Burst, 1)) / l.Rate * float64(time.Second))
}

// allowApp counts a send against the app's limit. The count is one
// JetStream counter per app and window, incremented atomically by every
// dispatcher process (Nats-Incr), so N processes together allow the
// configured rate, not N times it. An increment repeated after a lost
// answer counts twice: on the strict side of the limit.
func (l *limiter) allowApp(ctx context.Context, a *otp.AppSettings) error {
	lim := a.PerApp
	if lim.Rate <= 0 {
		return nil
	}
	window := appWindow(lim)
	now := time.Now()
	n := now.UnixNano() / int64(window)
	msg := nats.NewMsg("ratelimits.app." + a.Name + "." + strconv.FormatInt(n, 10))
	msg.Header.Set("Nats-Incr", "+1")
	pa, err := bus.Retry(ctx, func(ctx context.Context) (*jetstream.PubAck, error) { return l.bus.JS.PublishMsg(ctx, msg) })
	if err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	count, err := strconv.ParseInt(pa.Value, 10, 64)
	if err != nil {
		return fmt.Errorf("rate limit: counter answered %q: %w", pa.Value, err)
	}
	if count > int64(max(lim.Burst, 1)) {
		end := time.Unix(0, (n+1)*int64(window))
		return tooMany("rate_limited", end.Sub(now), "app %s is over its limit of %g sends per second", a.Name, lim.Rate)
	}
	return nil
}

type phoneHistory struct {
	Sends []int64 `json:"sends"` // unix milliseconds, oldest first
}

// phoneCheck is a per-phone limit check in flight.
type phoneCheck struct {
	l        *limiter
	a        *otp.AppSettings
	key      string
	create   *bus.KVWrite
	cooldown time.Duration
	limit    int
	window   time.Duration
}

// startPhone begins recording a send to phone: most numbers have no recent
// send, so it sends the creation of their history at once, to share a round
// trip with the caller's other writes. It returns nil when the app has no
// per-phone limit.
func (l *limiter) startPhone(a *otp.AppSettings, phone string) (*phoneCheck, error) {
	c := &phoneCheck{l: l, a: a, cooldown: a.ResendCooldown.D(), limit: a.PerPhone.Count, window: a.PerPhone.Window.D()}
	if c.cooldown <= 0 && c.limit == 0 {
		return nil, nil
	}
	c.key = l.keys.Keyed("phone:" + a.Name + ":" + phone)
	first, _ := json.Marshal(phoneHistory{Sends: []int64{time.Now().UnixMilli()}})
	var err error
	if c.create, err = l.bus.CreateAsync(limitsBucket, c.key, first, c.keep()); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	return c, nil
}

func (c *phoneCheck) keep() time.Duration { return max(c.cooldown, c.window) }

// finish returns nil if the send is allowed (and recorded), a 429 if not.
func (c *phoneCheck) finish(ctx context.Context) error {
	if c == nil {
		return nil
	}
	_, err := c.create.Wait(ctx)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("rate limit: %w", err)
	}
	return c.l.allowExisting(ctx, c)
}

// allowExisting checks and extends the history of a number that has one,
// with compare-and-set.
func (l *limiter) allowExisting(ctx context.Context, c *phoneCheck) error {
	keep, key := c.keep(), c.key
	for range 10 {
		now := time.Now()
		h, rev, err := l.history(ctx, key)
		if err != nil {
			return err
		}
		if err := c.admit(&h, now); err != nil {
			return err
		}
		h.Sends = append(h.Sends, now.UnixMilli())
		b, _ := json.Marshal(h)
		// A retried write whose first attempt was stored comes back as a
		// conflict and is counted again on the next round: one extra send
		// in the history, on the strict side of the limit.
		_, err = bus.Retry(ctx, func(ctx context.Context) (uint64, error) {
			if rev == 0 {
				return l.kv.Create(ctx, key, b, jetstream.KeyTTL(keep))
			}
			return l.kv.Update(ctx, key, b, rev)
		})
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("rate limit: %w", err)
		}
	}
	return tooMany("phone_rate_limited", time.Second, "too many concurrent sends to this number")
}

// history reads a number's send history and its revision; revision 0 when
// it has none (it expired since the create found it).
func (l *limiter) history(ctx context.Context, key string) (phoneHistory, uint64, error) {
	var h phoneHistory
	e, err := bus.Retry(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return l.kv.Get(ctx, key) })
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return h, 0, nil
	case err != nil:
		return h, 0, fmt.Errorf("rate limit: %w", err)
	}
	_ = json.Unmarshal(e.Value(), &h)
	return h, e.Revision(), nil
}

// admit drops the sends older than the check keeps from h, then returns a
// 429 if one more send now breaks the cooldown or the window's limit.
func (c *phoneCheck) admit(h *phoneHistory, now time.Time) error {
	cut := now.Add(-c.keep()).UnixMilli()
	kept := h.Sends[:0]
	for _, t := range h.Sends {
		if t > cut {
			kept = append(kept, t)
		}
	}
	h.Sends = kept
	if n := len(h.Sends); n > 0 && c.cooldown > 0 {
		if wait := time.UnixMilli(h.Sends[n-1]).Add(c.cooldown).Sub(now); wait > 0 {
			return tooMany("resend_cooldown", wait, "a code was sent to this number less than %s ago", c.cooldown)
		}
	}
	if c.limit > 0 {
		inWindow := 0
		wcut := now.Add(-c.window).UnixMilli()
		for _, t := range h.Sends {
			if t > wcut {
				inWindow++
			}
		}
		if inWindow >= c.limit {
			oldest := h.Sends[len(h.Sends)-inWindow]
			return tooMany("phone_rate_limited", time.UnixMilli(oldest).Add(c.window).Sub(now),
				"%d codes were sent to this number in the last %s; the limit is %d", inWindow, c.window, c.limit)
		}
	}
	return nil
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
