package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/services/herald/app"
)

// serveOptions are herald serve's flags.
type serveOptions struct {
	opts    app.Options
	targets string
	stopIn  time.Duration
}

func serveCmd(e *env) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the platform: an embedded JetStream server and every service",
		Long: `Run Herald. By default everything runs in this process: an embedded NATS
JetStream server (data under ./data, clients on 127.0.0.1:4222) and the
dispatcher, provider-adapter, incident and notifier services, with the HTTP API
on 127.0.0.1:8080. --target runs a subset; --nats uses an external server or
cluster instead of embedding one.

Configuration comes from --config (default ./herald.yaml if it exists), then
environment variables, then these flags. SIGINT or SIGTERM stops the HTTP server,
drains the consumers (every message in hand is handled and acknowledged) and
closes the event log cleanly. SIGHUP re-reads the configuration file; services
that can (the incident rules) apply it without losing state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), e) },
	}
	f := cmd.Flags()
	f.StringVar(&o.opts.ConfigFile, "config", "", "configuration file (default ./herald.yaml if it exists)")
	f.StringVar(&o.opts.DataDir, "data", "", "data directory of the embedded server (default ./data)")
	f.StringVar(&o.opts.HTTPAddr, "http", "", "HTTP listen address (default 127.0.0.1:8080)")
	f.StringVar(&o.opts.NATSListen, "nats-listen", "", "client address of the embedded NATS server (default 127.0.0.1:4222; 'none' for none, with nats.inProcess: true)")
	f.StringVar(&o.opts.NATSURL, "nats", "", "use this external NATS server or cluster instead of embedding one")
	f.StringVar(&o.opts.NATSCredsDir, "nats-creds-dir", "", "with --nats: directory of the roles' <role>.creds (default <data>/nats; env HERALD_NATS_CREDS_DIR)")
	f.StringVar(&o.targets, "target", "all", "services to run: all, or a comma-separated list of dispatcher, provider-adapter, incident, notifier")
	f.DurationVar(&o.stopIn, "shutdown-timeout", 30*time.Second, "how long a clean stop may take")
	f.StringVar(&o.opts.LogFormat, "log-format", "", "log lines as text or json; auto (the default): text on a terminal, JSON otherwise (log.format)")
	return cmd
}

func (o *serveOptions) run(ctx context.Context, e *env) error {
	ts, err := app.ParseTargets(o.targets)
	if err != nil {
		return err
	}
	opts := o.opts
	opts.Targets = ts
	if opts.ConfigFile == "" {
		if _, err := os.Stat("herald.yaml"); err == nil {
			opts.ConfigFile = "herald.yaml"
		}
	}
	opts.LogOutput = e.stderr
	opts.Stdout = e.stdout
	a, err := app.New(opts)
	if err != nil {
		return err
	}
	// SIGHUP reloads (see waitForStop); caught from now on, so that one sent
	// as soon as the process reports it is running never kills it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	a.Log.Info("herald is running", "http", a.HTTP.URL(), "nats", a.Bus.ClientURL(), "targets", ts)
	waitForStop(ctx, a, hup)
	stopCtx, cancelStop := context.WithTimeout(context.Background(), o.stopIn)
	defer cancelStop()
	if err := a.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	a.Log.Info("stopped cleanly")
	return nil
}

// waitForStop reloads the configuration on each SIGHUP until the platform
// is told to stop, by a signal or the end of ctx.
func waitForStop(ctx context.Context, a *app.App, hup <-chan os.Signal) {
	for {
		select {
		case <-hup:
			if err := a.Reload(ctx); err != nil {
				a.Log.Error("reload failed; the previous configuration stays in force", "error", err)
			} else {
				a.Log.Info("configuration reloaded", "signal", "hangup")
			}
		case sig := <-a.Wait():
			a.Log.Info("stopping", "signal", sig.Signal.String())
			return
		case <-ctx.Done():
			a.Log.Info("stopping", "signal", "interrupt")
			return
		}
	}
}
