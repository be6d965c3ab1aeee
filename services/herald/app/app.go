// Package app assembles Herald's fx application: the platform core (config,
// logs, metrics, the bus, the HTTP server) and the services selected by
// target. The herald binary and the test harness both build it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"go.uber.org/dig"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/otp"
	"github.com/heraldhq/herald/services/bridge"
	"github.com/heraldhq/herald/services/console"
	"github.com/heraldhq/herald/services/dispatcher"
	"github.com/heraldhq/herald/services/incidents"
	"github.com/heraldhq/herald/services/ingest"
	"github.com/heraldhq/herald/services/notifier"
	"github.com/heraldhq/herald/services/provideradapter"
)

// Targets, as selected by --target.
const (
	Dispatcher      = "dispatcher"
	ProviderAdapter = "provider-adapter"
	Incident        = "incident"
	Notifier        = "notifier"
	// Bridge relays producers' brokers (herald.yaml's bridge section); it
	// is not part of "all": it runs where it is asked for.
	Bridge = "bridge"
)

// AllTargets lists every service of the platform, in start order.
func AllTargets() []string { return []string{Dispatcher, ProviderAdapter, Incident, Notifier} }

// targets are the names --target accepts: the platform's, then the bridge.
func targets() []string { return append(AllTargets(), Bridge) }

// modules are the services, each wrapped with its own connection: the
// *bus.Bus it takes is private to it and carries its role's credentials, so
// the server holds each service to its own job (pkg/access).
func modules() map[string]fx.Option {
	withRole := func(r access.Role, m fx.Option, more ...fx.Option) fx.Option {
		// The connection's readiness covers what the service declared it
		// needs (bus.Need) and the consumers it runs.
		ready := fx.Provide(fx.Annotate(func(b *bus.Bus) api.Check { return api.Check{Name: "jetstream:" + string(r), Func: b.Ready} },
			fx.ResultTags(`group:"readiness"`)))
		return fx.Module(string(r)+"-nats", append([]fx.Option{fx.Provide(fx.Private, roleBus(r)), ready, m}, more...)...)
	}
	return map[string]fx.Option{
		// Producers' events (POST /v1/events) come in with the dispatcher's
		// OTPs, published with the producer role.
		Dispatcher:      fx.Options(withRole(access.Dispatcher, dispatcher.Module), withRole(access.Producer, ingest.Module)),
		ProviderAdapter: withRole(access.ProviderAdapter, provideradapter.Module),
		Incident:        withRole(access.Incident, incidents.Module),
		Notifier:        withRole(access.Notifier, notifier.Module),
		Bridge:          withRole(access.Bridge, bridge.Module),
	}
}

// Options are the command line's settings; they override the config file.
type Options struct {
	ConfigFile string
	// ConfigYAML is used instead of ConfigFile when set (tests).
	ConfigYAML string
	DataDir    string
	HTTPAddr   string
	NATSListen string
	NATSURL    string
	// NATSCredsDir holds the roles' credentials for an external server.
	NATSCredsDir string
	Targets      []string
	// LogFormat overrides log.format: auto, json or text.
	LogFormat string
	// LogOutput receives log lines (default stderr); Logger, if set, is used instead.
	LogOutput io.Writer
	Logger    *slog.Logger
	// Stdout receives the console Slack sink's lines (default stdout).
	Stdout io.Writer
}

// App is a built application.
type App struct {
	fx *fx.App
	// Bus is the platform's own read-only connection (operator-read).
	Bus *bus.Bus
	// Connector opens a connection for a role (tests, tools in-process).
	Connector *bus.Connector
	HTTP      *api.Server
	Log       *slog.Logger

	opts      Options
	reloaders []config.Reloader
}

// ParseTargets reads a --target list: comma-separated service names, or
// "all" (the platform's four), which may be listed with bridge.
func ParseTargets(s string) ([]string, error) {
	if s == "" {
		return AllTargets(), nil
	}
	var out []string
	add := func(t string) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == "all":
			for _, a := range AllTargets() {
				add(a)
			}
		case slices.Contains(targets(), t):
			add(t)
		default:
			return nil, fmt.Errorf("%w: unknown target %q (targets: all, %s)", config.ErrInvalid, t, strings.Join(targets(), ", "))
		}
	}
	return out, nil
}

// New builds the application; Start runs it.
func New(opts Options) (*App, error) {
	if len(opts.Targets) == 0 {
		opts.Targets = AllTargets()
	}
	file, err := loadFile(opts)
	if err != nil {
		return nil, err
	}
	core, err := loadCore(file, opts)
	if err != nil {
		return nil, err
	}
	cat, err := event.NewCatalog()
	if err != nil {
		return nil, err
	}
	// Checked before anything else starts: a bind reachable from other
	// hosts without keys is refused here (exit code 2).
	keys, err := api.LoadKeyring(core.HTTP, cat)
	if err != nil {
		return nil, err
	}
	settings, err := checkConfig(file, core, cat, opts.Targets)
	if err != nil {
		return nil, err
	}
	if settings != nil {
		if err := keys.CheckApps(settings.AppNames()); err != nil {
			return nil, err
		}
	}
	log := appLogger(opts, core)
	if settings != nil && settings.Keys.Generated && !core.NATS.Embedded() {
		// Keys generated under this data dir seal what a process with
		// another data dir cannot open: its dispatches would be refused
		// (seal_invalid). Processes that share this data dir are fine.
		log.Warn("OTP keys were generated under the data dir: every dispatcher and provider adapter on this NATS must share them (set OTP_SEAL_KEY and OTP_HASH_KEY, docs/otp.md)",
			"dataDir", core.DataDir)
	}
	a := &App{Log: log, opts: opts}
	a.fx = fx.New(a.fxOptions(file, core, cat, keys, settings)...)
	if err := a.fx.Err(); err != nil {
		return nil, configCause(err)
	}
	return a, nil
}

// appLogger is opts.Logger, or a logger the configuration sets up on
// opts.LogOutput (default stderr).
func appLogger(opts Options, core Core) *slog.Logger {
	if opts.Logger != nil {
		return opts.Logger
	}
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	return newLogger(core, out)
}

// fxOptions compose the application: the checked configuration, the core
// (bus, HTTP server) and the targets' modules, then what App keeps.
func (a *App) fxOptions(file *config.File, core Core, cat *event.Catalog, keys *api.Keyring, settings *otp.Settings) []fx.Option {
	log, opts := a.Log, a.opts
	options := []fx.Option{
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: log.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			// Start-up errors are returned to the caller, which reports them
			// once; fx's own error lines would repeat them with a stack.
			l.UseErrorLevel(slog.LevelDebug)
			return l
		}),
		fx.Supply(file, core, core.HTTP, core.NATS, core.Streams, opts),
		fx.Supply(log, cat, keys),
		fx.Provide(fx.Annotate(func() io.Writer { return stdout(opts) }, fx.ResultTags(`name:"stdout"`))),
		coreModule,
	}
	if settings != nil {
		options = append(options, fx.Supply(settings))
	}
	mods := modules()
	for _, t := range opts.Targets {
		options = append(options, mods[t])
	}
	// Every process that serves HTTP serves the console: it reads the log
	// with the process's own read-only connection, and the API of the
	// targets this process runs (a view whose service runs elsewhere says
	// so), so an operator can open any process's address.
	options = append(options, console.Module)
	// Built last, the HTTP server starts after every service and stops
	// before them: no request arrives before the consumers run, and none is
	// left waiting on a consumer that already stopped.
	return append(options, fx.Populate(&a.HTTP, &a.Connector),
		fx.Invoke(fx.Annotate(func(b *bus.Bus) { a.Bus = b }, fx.ParamTags(`name:"core"`))),
		fx.Invoke(fx.Annotate(func(rs []config.Reloader) { a.reloaders = rs }, fx.ParamTags(`group:"reloaders"`))))
}

// configCause strips fx's dependency-graph wrapping from a start-up error,
// so the user reads the cause (the key at fault, the server that did not
// answer), not the constructor chain.
func configCause(err error) error {
	return dig.RootCause(err)
}

// Start starts every component, the bus first and the HTTP server last.
func (a *App) Start(ctx context.Context) error { return a.fx.Start(ctx) }

// Stop stops accepting requests, drains the consumers and closes the bus.
func (a *App) Stop(ctx context.Context) error { return a.fx.Stop(ctx) }

// Reload re-reads the configuration file and hands it to every service that
// can apply a new configuration while running (herald serve does it on
// SIGHUP). A service that finds its section invalid keeps its old one.
func (a *App) Reload(ctx context.Context) error {
	file, err := loadFile(a.opts)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range a.reloaders {
		if err := r.Reload(ctx, file); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Wait returns a channel that receives the signal (SIGINT, SIGTERM) asking
// the application to stop.
func (a *App) Wait() <-chan fx.ShutdownSignal { return a.fx.Wait() }

// stdout is where the console Slack sink prints.
func stdout(opts Options) io.Writer {
	if opts.Stdout != nil {
		return opts.Stdout
	}
	return os.Stdout
}

func loadFile(opts Options) (*config.File, error) {
	if opts.ConfigYAML != "" {
		return config.Parse("config", []byte(opts.ConfigYAML))
	}
	return config.Load(opts.ConfigFile)
}
