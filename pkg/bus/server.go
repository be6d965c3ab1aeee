package bus

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/heraldhq/herald/pkg/access"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// StoreDir holds JetStream's files.
	StoreDir string
	// Listen is the client address other processes connect to, e.g.
	// 127.0.0.1:4222; port 0 picks a free one; empty listens nowhere
	// (in-process connections only).
	Listen string
	// SyncInterval is how often JetStream fsyncs; 0 is the server default
	// (2 minutes). Always fsyncs every write before acknowledging it.
	SyncInterval time.Duration
	SyncAlways   bool
	// MaxStore limits JetStream's file store (0: server default).
	MaxStore int64
	Name     string
	// Auth runs the server in operator mode with these credentials: only
	// their users connect, each with its role's permissions. Nil runs an
	// open server (tests of the bus itself, benchmarks' private servers).
	Auth *access.Credentials
}

// StartServer starts an embedded NATS server with JetStream and waits until
// it accepts connections. Stop it with Shutdown and WaitForShutdown.
func StartServer(cfg ServerConfig, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName:        cfg.Name,
		JetStream:         true,
		StoreDir:          cfg.StoreDir,
		NoSigs:            true,
		SyncInterval:      cfg.SyncInterval,
		SyncAlways:        cfg.SyncAlways,
		JetStreamMaxStore: cfg.MaxStore,
		MaxPayload:        8 << 20,
		MaxControlLine:    access.MaxControlLine,
	}
	if opts.ServerName == "" {
		opts.ServerName = "herald"
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen address %q: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	if cfg.Auth != nil {
		if err := trustOperator(opts, cfg.Auth); err != nil {
			return nil, err
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if log != nil {
		s.SetLoggerV2(NewServerLogger(log.With("component", "nats-server")), false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 30s (is %s already in use?)", cfg.Listen)
	}
	return s, nil
}

// trustOperator puts the server in operator mode: it trusts the operator's
// JWT and resolves accounts from memory, preloaded with their JWTs.
func trustOperator(opts *server.Options, c *access.Credentials) error {
	oc, err := jwt.DecodeOperatorClaims(c.OperatorJWT)
	if err != nil {
		return fmt.Errorf("embedded nats: operator: %w", err)
	}
	res := &server.MemAccResolver{}
	for pub, tok := range c.AccountJWTs {
		if err := res.Store(pub, tok); err != nil {
			return fmt.Errorf("embedded nats: account %s: %w", pub, err)
		}
	}
	opts.TrustedOperators = []*jwt.OperatorClaims{oc}
	opts.SystemAccount = c.SystemAccount
	opts.AccountResolver = res
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number between 0 and 65535", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}
