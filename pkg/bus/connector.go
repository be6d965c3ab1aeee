package bus

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
)

// ErrNoCredentials means a role has no credentials to connect with.
var ErrNoCredentials = errors.New("no nats credentials")

// CredsDir is where a data directory keeps the embedded server's
// credentials (and, by default, where an external server's are looked for).
func CredsDir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// Connector opens a process's connections, one per role: to the embedded
// server it starts in operator mode (creating the credentials under
// <dataDir>/nats on first start), or to an external server with each role's
// credentials from the credentials directory.
type Connector struct {
	cfg     Config
	dataDir string
	srv     *server.Server
	url     string
	creds   *access.Credentials
	cat     *event.Catalog
	m       *Metrics
	log     *slog.Logger

	mu    sync.Mutex
	conns []*Bus
}

// NewConnector starts the embedded server (when no URL is configured) or
// prepares to reach the external one.
func NewConnector(cfg Config, dataDir string, cat *event.Catalog, m *Metrics, log *slog.Logger) (*Connector, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	c := &Connector{cfg: cfg, dataDir: dataDir, url: cfg.URL, cat: cat, m: m, log: log}
	if !cfg.Embedded() {
		return c, nil
	}
	sc, err := cfg.serverConfig(dataDir)
	if err != nil {
		return nil, err
	}
	table, err := access.Table(cat)
	if err != nil {
		return nil, err
	}
	c.creds, err = access.Ensure(CredsDir(dataDir), table)
	if err != nil {
		return nil, err
	}
	sc.Auth = c.creds
	c.srv, err = StartServer(sc, log)
	if err != nil {
		return nil, err
	}
	if !cfg.InProcess {
		c.url = c.srv.ClientURL()
	}
	return c, nil
}

// Connect opens a connection with the role's credentials.
func (c *Connector) Connect(ctx context.Context, r access.Role) (*Bus, error) {
	cc := ConnConfig{URL: c.url, Name: "herald-" + string(r), InboxPrefix: access.InboxPrefix(r), CAFile: c.cfg.CAFile}
	if c.srv != nil && c.cfg.InProcess {
		cc.Server = c.srv
	}
	switch {
	case c.creds != nil:
		cc.CredsFile = c.creds.CredsPath(r)
	default:
		dir := c.cfg.CredsDir
		if dir == "" {
			dir = CredsDir(c.dataDir)
		}
		file := filepath.Join(dir, access.CredsFile(r))
		_, err := os.Stat(file)
		switch {
		case err == nil:
			cc.CredsFile = file
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("nats credentials for %s: %w", r, err)
		case c.cfg.CredsFile != "" || c.cfg.Token != "":
			cc.CredsFile, cc.Token = c.cfg.CredsFile, c.cfg.Token
		default:
			// A configuration mistake: exit 2, the file named.
			return nil, fmt.Errorf("%w: nats: %w for role %s: no %s (set nats.credsDir to the directory herald nats init wrote)",
				config.ErrInvalid, ErrNoCredentials, r, file)
		}
	}
	b, err := Connect(ctx, cc, c.cat, c.m, c.log.With("role", string(r)))
	if err != nil {
		return nil, fmt.Errorf("nats as %s: %w", r, err)
	}
	b.Server = c.srv
	c.mu.Lock()
	c.conns = append(c.conns, b)
	c.mu.Unlock()
	return b, nil
}

// Abort closes every connection the connector opened at once, without
// flushing or draining: what the death of the process does to them (its
// leases are not released, its unacknowledged messages wait for their ack
// wait). Tests use it to kill a platform that shares the test's process.
func (c *Connector) Abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.conns {
		b.NC.Close()
	}
}

// Server is the embedded server, nil with an external one.
func (c *Connector) Server() *server.Server { return c.srv }

// ClientURL is where other processes reach the server ("" when the
// embedded server listens nowhere).
func (c *Connector) ClientURL() string {
	if c.srv != nil {
		if c.srv.Addr() == nil {
			return ""
		}
		return c.srv.ClientURL()
	}
	return redact(c.url)
}

// Shutdown stops the embedded server, if any, once every connection is closed.
func (c *Connector) Shutdown() {
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
}
