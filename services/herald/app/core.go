package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/classify"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/logging"
	"github.com/heraldhq/herald/pkg/otp"
	"github.com/heraldhq/herald/services/bridge"
	"github.com/heraldhq/herald/services/dispatcher"
	"github.com/heraldhq/herald/services/incidents"
	"github.com/heraldhq/herald/services/notifier"
	"github.com/heraldhq/herald/services/provideradapter"
	"github.com/heraldhq/herald/streams"
)

// Core is the platform's own configuration: the sections every target reads.
type Core struct {
	DataDir string
	HTTP    api.Config
	NATS    bus.Config
	Log     logging.Config
	Streams streams.Config
}

// knownSections are herald.yaml's top-level keys.
func knownSections() []string {
	return []string{"dataDir", "http", "nats", "log", "streams", "otp", "apps", "providers", "incident", "notifier", "integrations", "bridge"}
}

// loadCore reads the core sections and applies the command line's overrides.
func loadCore(f *config.File, opts Options) (Core, error) {
	c := Core{
		DataDir: "./data",
		HTTP:    api.DefaultConfig(),
		NATS:    bus.DefaultConfig(),
		Log:     logging.DefaultConfig(),
		Streams: streams.DefaultConfig(),
	}
	if err := f.CheckKnown(knownSections()...); err != nil {
		return c, err
	}
	if f.Has("dataDir") {
		if err := f.Section("dataDir", &c.DataDir); err != nil {
			return c, err
		}
	}
	if v := os.Getenv("HERALD_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	for key, into := range map[string]any{"http": &c.HTTP, "nats": &c.NATS, "log": &c.Log, "streams": &c.Streams} {
		if err := f.Section(key, into); err != nil {
			return c, err
		}
	}
	if opts.DataDir != "" {
		c.DataDir = opts.DataDir
	}
	if opts.HTTPAddr != "" {
		c.HTTP.Addr = opts.HTTPAddr
	}
	if opts.NATSListen != "" {
		c.NATS.Listen = opts.NATSListen
	}
	if opts.NATSURL != "" {
		c.NATS.URL = opts.NATSURL
	}
	if opts.NATSCredsDir != "" {
		c.NATS.CredsDir = opts.NATSCredsDir
	}
	if opts.LogFormat != "" {
		c.Log.Format = opts.LogFormat
		if err := c.Log.Validate(); err != nil {
			return c, fmt.Errorf("%w: --log-format: %w", config.ErrInvalid, err)
		}
	}
	if err := c.NATS.Validate(); err != nil {
		return c, fmt.Errorf("%w: nats.%w", config.ErrInvalid, err)
	}
	return c, nil
}

func newLogger(c Core, out io.Writer) *slog.Logger {
	return logging.New(c.Log, out).With("service", "herald")
}

// ServiceStreamDefs lists the stream and key-value definitions services add
// to the core ones (streams/*.yaml); serve and the CLI apply the same set.
func ServiceStreamDefs() []fs.FS {
	return []fs.FS{dispatcher.StreamDefs(), provideradapter.StreamDefs(), incidents.StreamDefs()}
}

var coreModule = fx.Module("core",
	fx.Provide(
		newRegistry,
		func(reg *prometheus.Registry) *bus.Metrics { return bus.NewMetrics(reg) },
		newConnector,
		fx.Annotate(newCoreBus, fx.ResultTags(`name:"core"`)),
		fx.Annotate(busReadiness, fx.ParamTags(`name:"core"`), fx.ResultTags(`group:"readiness"`)),
		fx.Annotate(newHTTP, fx.ParamTags(``, ``, ``, ``, ``, `group:"routes"`, `group:"readiness"`)),
	),
)

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	newBuildInfo(reg)
	return reg
}

type connectorIn struct {
	fx.In
	LC      fx.Lifecycle
	Core    Core
	Catalog *event.Catalog
	Metrics *bus.Metrics
	Log     *slog.Logger
}

// newConnector starts the embedded server (creating its credentials on
// first start) or prepares to reach the external one, and applies the
// stream definitions with the operator-admin role before anything else
// starts. Its stop hook, registered first, runs last: the server stops
// after every role's connection closed.
func newConnector(in connectorIn) (*bus.Connector, error) {
	ctx := context.Background()
	if in.Core.NATS.Embedded() {
		if err := os.MkdirAll(in.Core.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	c, err := bus.NewConnector(in.Core.NATS, in.Core.DataDir, in.Catalog, in.Metrics, in.Log)
	if err != nil {
		return nil, err
	}
	if err := applyStreams(ctx, c, in.Core, in.Log); err != nil {
		c.Shutdown()
		return nil, err
	}
	in.LC.Append(fx.StopHook(c.Shutdown))
	in.Log.Info("event log ready", "embedded", in.Core.NATS.Embedded(), "clientURL", c.ClientURL(),
		"dataDir", in.Core.DataDir, "sync", in.Core.NATS.Sync)
	return c, nil
}

// applyStreams creates or updates the streams and buckets as operator-admin.
// On an external server a process without that role's credentials leaves
// it to herald streams apply.
func applyStreams(ctx context.Context, c *bus.Connector, core Core, log *slog.Logger) error {
	defs, err := streams.Load(core.Streams, ServiceStreamDefs()...)
	if err != nil {
		return err
	}
	admin, err := c.Connect(ctx, access.OperatorAdmin)
	if errors.Is(err, bus.ErrNoCredentials) && !core.NATS.Embedded() {
		log.Info("streams not applied: no operator-admin credentials here (herald streams apply does it)")
		return nil
	}
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	results, err := streams.Apply(ctx, admin.JS, defs, core.Streams.Replicas)
	if err != nil {
		return err
	}
	for _, r := range results {
		log.Debug("stream applied", "kind", r.Kind, "name", r.Name, "action", r.Action)
	}
	return nil
}

// newCoreBus is the platform's own connection, read-only (operator-read):
// readiness and the process's view of the log.
func newCoreBus(lc fx.Lifecycle, c *bus.Connector) (*bus.Bus, error) {
	return roleBus(access.OperatorRead)(lc, c)
}

// roleBus provides a connection with the role's credentials, closed when the
// application stops.
func roleBus(r access.Role) func(fx.Lifecycle, *bus.Connector) (*bus.Bus, error) {
	return func(lc fx.Lifecycle, c *bus.Connector) (*bus.Bus, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := c.Connect(ctx, r)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(func(ctx context.Context) error { return b.Close(ctx) }))
		return b, nil
	}
}

func busReadiness(b *bus.Bus) api.Check {
	return api.Check{Name: "jetstream", Func: b.Ready}
}

func newHTTP(lc fx.Lifecycle, c Core, keys *api.Keyring, log *slog.Logger, reg *prometheus.Registry, routes []api.Route, checks []api.Check) (*api.Server, error) {
	s, err := api.NewServer(c.HTTP, keys, log, reg, routes, checks)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: func(context.Context) error { return s.Start() }, OnStop: s.Stop})
	return s, nil
}

// checkBridge checks the bridge section; without bridge.herald.url, the
// OTP sends go to this process's API, which must then run the dispatcher.
func checkBridge(f *config.File, c Core, targets []string) error {
	if _, err := classify.Load(f); err != nil {
		return err
	}
	bc, err := bridge.LoadConfig(f, c.HTTP)
	if err != nil {
		return err
	}
	if bc.Herald.Own && len(bc.AMQP) > 0 && !slices.Contains(targets, Dispatcher) {
		return fmt.Errorf("%w: bridge.herald.url: the dispatcher target does not run in this process; set the URL of Herald's HTTP API (or HERALD_BRIDGE_HERALD_URL)", config.ErrInvalid)
	}
	return nil
}

// checkConfig decodes and validates the sections of every selected service
// before anything starts, so that a mistake stops the start with the key at
// fault and no server half up. It returns the OTP settings (shared by the
// dispatcher and the provider adapter), loaded once here.
func checkConfig(f *config.File, c Core, cat *event.Catalog, targets []string) (*otp.Settings, error) {
	otpNeeded := false
	for _, t := range targets {
		switch t {
		case Dispatcher, ProviderAdapter:
			otpNeeded = true
			if _, err := classify.Load(f); t == Dispatcher && err != nil {
				return nil, err
			}
		case Incident:
			ic, err := incidents.LoadConfig(f)
			if err != nil {
				return nil, err
			}
			if _, err := ic.CompileRules(cat); err != nil {
				return nil, err
			}
		case Notifier:
			nc := notifier.DefaultConfig()
			if err := f.Section("notifier", &nc); err != nil {
				return nil, err
			}
		case Bridge:
			if err := checkBridge(f, c, targets); err != nil {
				return nil, err
			}
		}
	}
	if !otpNeeded {
		return nil, nil
	}
	// Last: it loads (or, the first time, creates) the OTP keys under the
	// data directory, the one thing this check writes.
	return otp.Load(f, c.DataDir)
}
