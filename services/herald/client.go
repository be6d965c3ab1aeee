package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
)

// clientFlags are the flags of every command that talks to a running server.
type clientFlags struct {
	url     string
	timeout time.Duration
	creds   string
	dataDir string
	caFile  string
	// role is the identity the command needs; its credentials are found
	// next to the data directory unless --creds names a file.
	role access.Role
	// as is the role of the credentials connected with ("" if unknown).
	as access.Role
}

func (c *clientFlags) register(cmd *cobra.Command, role access.Role) {
	c.role = role
	def := os.Getenv("HERALD_NATS_URL")
	if def == "" {
		def = "nats://127.0.0.1:4222"
	}
	dataDir := os.Getenv("HERALD_DATA_DIR")
	if dataDir == "" {
		dataDir = "./data"
	}
	cmd.Flags().StringVar(&c.url, "nats", def, "NATS server URL (env HERALD_NATS_URL)")
	cmd.Flags().DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for the server")
	cmd.Flags().StringVar(&c.creds, "creds", os.Getenv("HERALD_NATS_CREDS"),
		fmt.Sprintf("NATS credentials file (env HERALD_NATS_CREDS; default: the %s role's in the data dir)", role))
	cmd.Flags().StringVar(&c.caFile, "ca", os.Getenv("HERALD_NATS_CA"), "CA of the server's TLS certificate (env HERALD_NATS_CA)")
	cmd.Flags().StringVar(&c.dataDir, "data-dir", dataDir, "data directory of herald serve, where its credentials are (env HERALD_DATA_DIR)")
}

// credentials finds the file to connect with: --creds, else the role's
// file under <data-dir>/nats, as herald serve wrote it.
func (c *clientFlags) credentials() (file string, role access.Role, err error) {
	if c.creds != "" {
		r, err := access.RoleOfCreds(c.creds)
		if err != nil {
			return "", "", usagef("--creds: %v", err)
		}
		return c.creds, r, nil
	}
	file = filepath.Join(bus.CredsDir(c.dataDir), access.CredsFile(c.role))
	if _, err := os.Stat(file); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", usagef("no NATS credentials for the %s role: %s does not exist; run next to the data dir of herald serve (--data-dir DIR) or give --creds FILE (env HERALD_NATS_CREDS)", c.role, file)
		}
		return "", "", err
	}
	return file, c.role, nil
}

// connect opens a bus to the server.
func (c *clientFlags) connect(ctx context.Context) (*bus.Bus, error) {
	cat, err := event.NewCatalog()
	if err != nil {
		return nil, err
	}
	cc := bus.ConnConfig{URL: c.url, Name: "herald-cli", Token: os.Getenv("HERALD_NATS_TOKEN"), CAFile: c.caFile}
	if cc.Token == "" {
		file, role, err := c.credentials()
		if err != nil {
			return nil, err
		}
		cc.CredsFile, c.as = file, role
		if role != "" {
			cc.InboxPrefix = access.InboxPrefix(role)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return bus.Connect(ctx, cc, cat, nil, nil)
}

func closeBus(b *bus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.Close(ctx)
}
