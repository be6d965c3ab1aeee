package incidents

import (
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Retries. Every JetStream operation made through the bus already rides
// out an election or a lost server inside itself (bus.Retry: what Publish,
// PublishOnce and the stream reads use); what is retried here is a whole
// step around them, with the module's one backoff library.

// untilStopped retries a step that must go on for as long as the service
// runs (its context), waiting as policy says and logging each failure.
func untilStopped(log *slog.Logger, msg string, policy backoff.BackOff) []backoff.RetryOption {
	return []backoff.RetryOption{
		backoff.WithBackOff(policy),
		backoff.WithMaxElapsedTime(0), // the context, not a time, ends it
		backoff.WithNotify(func(err error, wait time.Duration) {
			log.Warn(msg, "error", err, "retryIn", wait)
		}),
	}
}

// publishBackOff paces the publication of transitions while INCIDENTS
// refuses them: from 100 ms, doubling, to every 5 s.
func publishBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.Multiplier, b.MaxInterval = 100*time.Millisecond, 2, 5*time.Second
	return b
}

// raced retries, at once and three times in all, a read or a
// compare-and-set that another process can race (the writer moving the
// checkpoint on while it is read, a deposed writer's last save). The step
// returns backoff.Permanent for what a new attempt cannot change.
func raced() []backoff.RetryOption {
	return []backoff.RetryOption{backoff.WithBackOff(&backoff.ZeroBackOff{}), backoff.WithMaxTries(3)}
}
