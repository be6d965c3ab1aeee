package main

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
)

// clientFlags are the flags of every command that talks to a running server.
type clientFlags struct {
	url     string
	timeout time.Duration
}

func (c *clientFlags) register(cmd *cobra.Command) {
	def := os.Getenv("HERALD_NATS_URL")
	if def == "" {
		def = "nats://127.0.0.1:4222"
	}
	cmd.Flags().StringVar(&c.url, "nats", def, "NATS server URL (env HERALD_NATS_URL)")
	cmd.Flags().DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for the server")
}

// connect opens a bus to the server.
func (c *clientFlags) connect(ctx context.Context) (*bus.Bus, error) {
	cat, err := event.NewCatalog()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return bus.Connect(ctx, bus.ConnConfig{URL: c.url, Name: "herald-cli", Token: os.Getenv("HERALD_NATS_TOKEN"),
		CredsFile: os.Getenv("HERALD_NATS_CREDS")}, cat, nil, nil)
}

func closeBus(b *bus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.Close(ctx)
}
