// Package bus is Herald's event log on NATS JetStream: an embedded server or a
// connection to an external one, typed publishing (validated, de-duplicated,
// pipelined) and typed durable consumers that dead-letter what they cannot use.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/event"
)

// Bus is a connection to JetStream with the event catalog.
type Bus struct {
	NC      *nats.Conn
	JS      jetstream.JetStream
	Catalog *event.Catalog
	// Server is the embedded server, nil when connected to an external one.
	Server *server.Server

	log     *slog.Logger
	metrics *Metrics
	needs   needs
}

// ConnConfig says how to reach JetStream.
type ConnConfig struct {
	// URL of an external server or cluster (comma-separated seeds). Ignored
	// when Server is set.
	URL string
	// Server is an embedded server to connect to in-process.
	Server *server.Server
	// Name identifies the client in the server's monitoring.
	Name string
	// CredsFile, Token: optional credentials for an external server.
	CredsFile string
	Token     string
	// CAFile is the CA that signed the server's TLS certificate (herald nats
	// init --tls writes it); set, the connection requires TLS.
	CAFile string
	// InboxPrefix replaces _INBOX for the connection's reply subjects (each
	// role has its own; see access.InboxPrefix).
	InboxPrefix string
	// MaxPending bounds the asynchronous publishes awaiting an ack.
	MaxPending int
	// AckTimeout is how long a publish waits for JetStream's ack before it
	// fails with ErrUnavailable (default 10s).
	AckTimeout time.Duration
}

// Connect connects to JetStream.
func Connect(ctx context.Context, cfg ConnConfig, cat *event.Catalog, m *Metrics, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "bus")
	opts, url := cfg.natsOptions(log)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", redact(url), err)
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4096
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	js, err := newJetStream(nc, cfg, cat, m)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream is not available at %s: %w", redact(url), err)
	}
	return &Bus{NC: nc, JS: js, Catalog: cat, Server: cfg.Server, log: log, metrics: m}, nil
}

// natsOptions are the connection's options, with its reconnects and async
// errors logged to log, and the URL to dial ("" for the in-process server).
func (cfg ConnConfig) natsOptions(log *slog.Logger) ([]nats.Option, string) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("nats async error", "subject", subj, "error", err)
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	url := cfg.URL
	if cfg.Server != nil {
		opts = append(opts, nats.InProcessServer(cfg.Server))
		url = ""
	} else if url == "" {
		url = nats.DefaultURL
	}
	return opts, url
}

// newJetStream opens JetStream on nc with cfg's bounds on asynchronous
// publishes.
func newJetStream(nc *nats.Conn, cfg ConnConfig, cat *event.Catalog, m *Metrics) (jetstream.JetStream, error) {
	// Asynchronous acks and failures are counted where JetStream reports
	// them, so every publish is counted once whether or not it is awaited.
	published, failed := m.byType(cat, m.Published), m.byType(cat, m.PublishErrors, "unavailable")
	return jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) {
			published.inc(msg.Header)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, msg *nats.Msg, _ error) {
			failed.inc(msg.Header)
		}))
}

// Close flushes pending publishes and acks, then closes the connection.
func (b *Bus) Close(ctx context.Context) error {
	if !b.NC.IsConnected() {
		// Nothing can be flushed to a server that is gone.
		pending := b.JS.PublishAsyncPending()
		b.NC.Close()
		if pending > 0 {
			return fmt.Errorf("close: %d publishes unconfirmed: the server is unreachable", pending)
		}
		return nil
	}
	var errs []error
	select {
	case <-b.JS.PublishAsyncComplete():
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("close: %d publishes still pending: %w", b.JS.PublishAsyncPending(), ctx.Err()))
	}
	if err := b.NC.FlushWithContext(ctx); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("close: flush: %w", err))
	}
	done := make(chan struct{})
	b.NC.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := b.NC.Drain(); err != nil {
		b.NC.Close()
		return errors.Join(append(errs, err)...)
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.NC.Close()
	}
	return errors.Join(errs...)
}

// Logger returns the bus's logger.
func (b *Bus) Logger() *slog.Logger { return b.log }

// Metrics returns the bus's metrics.
func (b *Bus) Metrics() *Metrics { return b.metrics }

// redact hides passwords in server URLs for log lines and errors.
func redact(urls string) string {
	if urls == "" {
		return "in-process server"
	}
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := neturl.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = neturl.UserPassword(u.User.Username(), "redacted")
			} else {
				u.User = neturl.User("redacted")
			}
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
