package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
)

func natsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Credentials and TLS for an external NATS cluster",
	}
	cmd.AddCommand(natsInitCmd(e), natsRevokeCmd(e))
	return cmd
}

// natsInitOptions are herald nats init's flags.
type natsInitOptions struct {
	dir      string
	withTLS  bool
	hosts    string
	validFor time.Duration
}

func natsInitCmd(e *env) *cobra.Command {
	o := &natsInitOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the operator, account and per-role credentials, and the servers' auth include",
		Long: `Create, in --dir, Herald's identities in NATS's decentralized JWT model: an
operator, its system account, the HERALD account (JetStream, no limits) and
one user per role with its permissions (docs/security.md), as <role>.creds
files, and auth.conf, the include every nats-server config needs (operator,
system_account, a MEMORY resolver preloaded with the accounts). It is what
herald serve does for its embedded server under <data>/nats.

Running it again keeps every key and re-issues only the users whose
permissions changed. With --tls it also creates a CA (once) and a server
certificate for --hosts, for the client and route ports.

Copy auth.conf and tls/ to every NATS node (deploy/nats expects
/etc/nats/herald/), the <role>.creds and tls/ca.pem to the Herald machines
(nats.credsDir, nats.caFile). Keep operator.nk and the account .nk files
off the servers: they sign new credentials.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return o.run(e) },
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "directory to write the credentials in (kept; created 0700)")
	cmd.Flags().BoolVar(&o.withTLS, "tls", false, "also create a CA and a server certificate")
	cmd.Flags().StringVar(&o.hosts, "hosts", "localhost,127.0.0.1", "with --tls: comma-separated DNS names and IPs of the servers")
	cmd.Flags().DurationVar(&o.validFor, "valid-for", 2*365*24*time.Hour, "with --tls: how long the certificates are valid")
	return cmd
}

func (o *natsInitOptions) run(e *env) error {
	if o.dir == "" {
		return usagef("--dir is required")
	}
	cat, err := event.NewCatalog()
	if err != nil {
		return err
	}
	table, err := access.Table(cat)
	if err != nil {
		return err
	}
	creds, err := access.Ensure(o.dir, table)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "server include: %s\n", filepath.Join(o.dir, access.AuthConfFile))
	for _, r := range access.Roles() {
		fmt.Fprintf(e.stdout, "%-16s %s\n", r, creds.CredsPath(r))
	}
	if !o.withTLS {
		return nil
	}
	return o.writeTLS(e)
}

// writeTLS creates the CA (once) and a server certificate for --hosts.
func (o *natsInitOptions) writeTLS(e *env) error {
	var hs []string
	for _, h := range strings.Split(o.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		return usagef("--tls needs --hosts (the servers' names or addresses)")
	}
	f, err := access.WriteTLS(o.dir, hs, o.validFor)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "tls ca:          %s\ntls certificate: %s\ntls key:         %s\n", f.CA, f.Cert, f.Key)
	return nil
}

func natsRevokeCmd(e *env) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "revoke ROLE",
		Short: "Revoke a role's credentials and issue new ones",
		Long: `Revoke the role's current user in the HERALD account's JWT and write a new
<role>.creds, in --dir (herald nats init's directory, or <data>/nats of
herald serve). Servers refuse the old credentials once they load the new
auth.conf: restart herald serve, or copy auth.conf to every node and reload
it (nats-server --signal reload).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef("--dir is required")
			}
			r, err := access.ParseRole(args[0])
			if err != nil {
				return usageError{err}
			}
			cat, err := event.NewCatalog()
			if err != nil {
				return err
			}
			table, err := access.Table(cat)
			if err != nil {
				return err
			}
			creds, err := access.Revoke(dir, r, table)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked the previous %s credentials; new: %s\nserver include: %s\n", r, creds.CredsPath(r),
				filepath.Join(dir, access.AuthConfFile))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the credentials directory")
	return cmd
}
