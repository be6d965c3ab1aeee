package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/bench"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

func benchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Herald against raw JetStream on this machine",
		Long: `Benchmarks run on a fresh embedded server in a temporary directory and
compare Herald with raw JetStream measured in the same run.`,
	}
	cmd.AddCommand(benchBusCmd(e), benchOTPCmd(e))
	return cmd
}

func benchBusCmd(e *env) *cobra.Command {
	var (
		n, rounds int
		sync      string
	)
	cmd := &cobra.Command{
		Use:   "bus",
		Short: "Typed publish and consume against raw PublishAsync and Consume+Ack",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1000 || rounds < 1 {
				return usagef("--events must be at least 1000 and --rounds at least 1")
			}
			cfg := bus.Config{Listen: "127.0.0.1:0", Sync: sync}
			if err := cfg.Validate(); err != nil {
				return usagef("--sync: %v", err)
			}
			dir, err := os.MkdirTemp("", "herald-bench")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cat, err := event.NewCatalog()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Hour)
			defer cancel()
			b, err := bus.Open(ctx, cfg, dir, "herald-bench", cat, nil, nil)
			if err != nil {
				return err
			}
			defer b.Shutdown(context.Background())
			defs, err := streams.Load(streams.DefaultConfig())
			if err != nil {
				return err
			}
			if _, err := streams.Apply(ctx, b.JS, defs, 1); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "benchmarking %d events x %d rounds (sync: %s)…\n", n, rounds, sync)
			r, err := bench.CompareBus(ctx, b, n, rounds, e.stderr)
			if err != nil {
				return err
			}
			r.Write(e.stdout)
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "events", 200_000, "events per round")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "rounds (medians are reported)")
	cmd.Flags().StringVar(&sync, "sync", "default", "fsync policy: default, always, or a duration")
	return cmd
}

func benchOTPCmd(e *env) *cobra.Command {
	cfg := bench.DefaultOTPConfig()
	cmd := &cobra.Command{
		Use:   "otp",
		Short: "POST /v1/otp/send against the simulated provider, the whole platform in this process",
		Long: `Starts the whole platform in this process (embedded JetStream in a temporary
directory, dispatcher, provider adapter on the simulated provider, HTTP on
127.0.0.1) and sends OTPs through real HTTP: first the raw JetStream async
publish rate on the same server (the reference), then the sustained rate with
--workers synchronous clients, then the latency at a fixed --rate (open loop).
Every request uses a new phone number, so per-phone limits stay on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Workers < 1 || cfg.Rate < 1 || cfg.Duration < time.Second || cfg.RateDuration < time.Second || cfg.RawN < 1000 {
				return usagef("--workers and --rate must be positive, durations at least 1s, --raw at least 1000")
			}
			cfg.Progress = e.stderr
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Hour)
			defer cancel()
			fmt.Fprintf(e.stderr, "benchmarking OTP sends: %s with %d clients, then %d/s for %s…\n",
				cfg.Duration, cfg.Workers, cfg.Rate, cfg.RateDuration)
			r, err := bench.RunOTP(ctx, cfg)
			if err != nil {
				return err
			}
			r.Write(e.stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the sustained phase")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent synchronous clients in the sustained phase")
	f.IntVar(&cfg.Rate, "rate", cfg.Rate, "requests per second of the fixed-rate phase")
	f.DurationVar(&cfg.RateDuration, "rate-duration", cfg.RateDuration, "length of the fixed-rate phase")
	f.DurationVar(&cfg.SimLatency, "sim-latency", cfg.SimLatency, "the simulated provider's answer time")
	f.IntVar(&cfg.RawN, "raw", cfg.RawN, "events of the raw JetStream reference")
	return cmd
}
