package notifier

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Slack limits each Web API method on its own (docs/notifier.md, Pacing):
// chat.postMessage to about one message per second per channel, with short
// bursts; chat.update, chat.delete, conversations.history and
// conversations.replies per workspace (Tier 3, 50+ a minute). Each method
// and scope has its own bucket, and a 429 pauses only the bucket it came
// from, for its Retry-After.

// Web API methods paced per workspace.
const (
	methodUpdate  = "chat.update"
	methodDelete  = "chat.delete"
	methodHistory = "conversations.history"
	methodReplies = "conversations.replies"
)

// bucket paces one method in one scope: a token bucket and the
// Retry-After of the last 429 it got.
type bucket struct {
	lim *rate.Limiter

	mu    sync.Mutex
	pause time.Time
}

func newBucket(perSecond float64, burst int) *bucket {
	return &bucket{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

func unlimited() *bucket { return &bucket{lim: rate.NewLimiter(rate.Inf, 1)} }

// pauseFor holds the bucket back for a 429's Retry-After.
func (b *bucket) pauseFor(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := time.Now().Add(d); t.After(b.pause) {
		b.pause = t
	}
}

func (b *bucket) paused() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pause
}

// take takes a token if the call may go now (and answers the zero time),
// else answers when to try again.
func (b *bucket) take() time.Time {
	now := time.Now()
	if p := b.paused(); p.After(now) {
		return p
	}
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return now.Add(d)
	}
	return time.Time{}
}

// wait blocks until a call may go: the pause, then a token.
func (b *bucket) wait(ctx context.Context) error {
	if d := time.Until(b.paused()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return b.lim.Wait(ctx)
}

// workspaceBuckets are the buckets of the methods Slack limits per
// workspace.
func workspaceBuckets(c RateConfig) map[string]*bucket {
	m := func(r MethodRate) *bucket { return newBucket(r.PerMinute/60, r.Burst) }
	return map[string]*bucket{
		methodUpdate:  m(c.Update),
		methodDelete:  m(c.Delete),
		methodHistory: m(c.History),
		methodReplies: m(c.History),
	}
}
