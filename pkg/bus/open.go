package bus

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
)

// Config is herald.yaml's nats section.
type Config struct {
	// URL of an external server or cluster; empty embeds a server.
	URL string `yaml:"url" env:"HERALD_NATS_URL"`
	// Listen is the embedded server's client address, for the CLI and other
	// processes; "" or "none" listens nowhere.
	Listen string `yaml:"listen" env:"HERALD_NATS_LISTEN"`
	// Sync is the embedded server's fsync policy: "default" (every 2 minutes;
	// a killed process loses nothing, an OS crash can lose the last
	// moments), "always" (fsync before every ack), or a Go duration.
	Sync string `yaml:"sync" env:"HERALD_NATS_SYNC"`
	// MaxStore limits the embedded server's JetStream storage (0: no limit).
	MaxStore config.Bytes `yaml:"maxStore"`
	// InProcess connects the services to the embedded server in-process
	// rather than over loopback TCP. Off by default: in-process connections
	// were measured to stall pull consumers until their pull request expired
	// (up to 30s) in about 5% of runs; loopback TCP never did (docs/operations.md).
	InProcess bool `yaml:"inProcess" env:"HERALD_NATS_IN_PROCESS"`
	// CredsDir holds one <role>.creds per role (herald nats init writes
	// them) for an external server; default <dataDir>/nats, where the
	// embedded server's are.
	CredsDir string `yaml:"credsDir" env:"HERALD_NATS_CREDS_DIR"`
	// CAFile is the CA of an external server's TLS certificate (herald nats
	// init --tls writes <dir>/tls/ca.pem); set, connections require TLS.
	CAFile string `yaml:"caFile" env:"HERALD_NATS_CA"`
	// CredsFile and Token authenticate every role that has no file in
	// CredsDir to an external server (one identity for all: only for a
	// server that does not separate Herald's roles); the token comes from
	// the environment only.
	CredsFile string `yaml:"credsFile" env:"HERALD_NATS_CREDS"`
	Token     string `yaml:"-" env:"HERALD_NATS_TOKEN"`
}

// DefaultConfig embeds a server listening on 127.0.0.1:4222.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:4222", Sync: "default"}
}

// Validate checks the section.
func (c *Config) Validate() error {
	if _, _, err := c.syncPolicy(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if c.URL != "" && !strings.Contains(c.URL, "://") {
		return fmt.Errorf("url: %q is not a URL like nats://host:4222", c.URL)
	}
	if c.Listen != "" && c.Listen != "none" {
		if _, _, err := splitHostPort(c.Listen); err != nil {
			return fmt.Errorf("listen: %q: %w", c.Listen, err)
		}
	}
	return nil
}

func (c *Config) syncPolicy() (time.Duration, bool, error) {
	switch c.Sync {
	case "", "default":
		return 0, false, nil
	case "always":
		return 0, true, nil
	}
	d, err := time.ParseDuration(c.Sync)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("%q is not default, always or a positive duration", c.Sync)
	}
	return d, false, nil
}

// serverConfig is the embedded server the section describes, its store
// under dataDir/jetstream (authentication is the caller's to add).
func (c *Config) serverConfig(dataDir string) (ServerConfig, error) {
	interval, always, err := c.syncPolicy()
	if err != nil {
		return ServerConfig{}, err
	}
	listen := c.Listen
	if listen == "none" {
		listen = ""
	}
	if listen == "" && !c.InProcess {
		return ServerConfig{}, fmt.Errorf("%w: nats.listen: an embedded server that listens nowhere (none) needs nats.inProcess: true", config.ErrInvalid)
	}
	return ServerConfig{
		StoreDir:     filepath.Join(dataDir, "jetstream"),
		Listen:       listen,
		SyncInterval: interval,
		SyncAlways:   always,
		MaxStore:     int64(c.MaxStore),
	}, nil
}

// Embedded reports whether the configuration embeds a server.
func (c *Config) Embedded() bool { return c.URL == "" }

// Open starts an open embedded server (no authentication) under
// dataDir/jetstream and connects to it, or connects to the external server:
// for the benchmarks' private, throwaway servers. herald serve uses a
// Connector, whose embedded server requires credentials.
func Open(ctx context.Context, cfg Config, dataDir, name string, cat *event.Catalog, m *Metrics, log *slog.Logger) (*Bus, error) {
	if !cfg.Embedded() {
		return Connect(ctx, ConnConfig{URL: cfg.URL, Name: name, CredsFile: cfg.CredsFile, Token: cfg.Token}, cat, m, log)
	}
	sc, err := cfg.serverConfig(dataDir)
	if err != nil {
		return nil, err
	}
	srv, err := StartServer(sc, log)
	if err != nil {
		return nil, err
	}
	cc := ConnConfig{Server: srv, Name: name}
	if !cfg.InProcess {
		cc = ConnConfig{URL: srv.ClientURL(), Name: name}
	}
	b, err := Connect(ctx, cc, cat, m, log)
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, err
	}
	b.Server = srv
	return b, nil
}

// Shutdown closes the connection and stops the embedded server, if any.
func (b *Bus) Shutdown(ctx context.Context) error {
	err := b.Close(ctx)
	if b.Server != nil {
		b.Server.Shutdown()
		b.Server.WaitForShutdown()
	}
	return err
}

// ClientURL is where other processes reach the server ("" when the
// embedded server listens nowhere).
func (b *Bus) ClientURL() string {
	if b.Server != nil {
		if b.Server.Addr() == nil {
			return ""
		}
		return b.Server.ClientURL()
	}
	return b.NC.ConnectedUrlRedacted()
}
