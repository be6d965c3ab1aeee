package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
)

func keysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Mint HTTP API keys and print the hash to configure",
		Long: `HTTP API keys: producer keys (scoped to apps and event types) and operator
keys. herald.yaml holds only their SHA-256 digests, under http.auth.keys
(or in http.auth.keysFile); docs/security.md explains the roles.`,
	}
	cmd.AddCommand(keysNewCmd(e), keysHashCmd(e))
	return cmd
}

func keysNewCmd(e *env) *cobra.Command {
	var (
		kc          api.KeyConfig
		role        string
		apps, types []string
	)
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Mint a key; print it once, and the entry to add under http.auth.keys",
		Long: `Mint a random key and print it (once: Herald stores only its hash) followed
by the configuration entry to add under http.auth.keys in herald.yaml, or to
the keys file. The entry is checked as herald serve will check it.

  herald keys new --name shop --role producer --apps shop --types integration_call_completed
  herald keys new --name ops --role operator`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			kc.Role, kc.Apps, kc.Types = api.Role(role), apps, types
			key, hash, err := api.NewKey()
			if err != nil {
				return err
			}
			kc.Hash = hash
			cat, err := event.NewCatalog()
			if err != nil {
				return err
			}
			// The same checks as herald serve's (apps are checked against
			// the configured ones there).
			if _, err := api.LoadKeyring(api.Config{Addr: "127.0.0.1:0", Auth: api.AuthConfig{Keys: []api.KeyConfig{kc}}}, cat); err != nil {
				return usageError{err}
			}
			entry, err := yaml.Marshal([]api.KeyConfig{kc})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "# The key, shown once; give it to its holder (Authorization: Bearer <key>):\n%s\n", key)
			fmt.Fprintf(e.stdout, "# Add under http.auth.keys in herald.yaml (or to the keys file):\n%s", entry)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kc.Name, "name", "", "who holds the key (named in logs and errors), e.g. shop-backend")
	f.StringVar(&role, "role", "", "producer (send and verify OTPs, publish events) or operator (state changes, incidents, subscriptions)")
	f.StringSliceVar(&apps, "apps", nil, "producer: the apps it may send and verify OTPs for")
	f.StringSliceVar(&types, "types", nil, "producer: the event types it may publish on POST /v1/events")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func keysHashCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "hash",
		Short: "Print the hash to configure for a key read from standard input",
		Long: `Read a key from standard input (one line) and print its hash, the value of
hash: in http.auth.keys. The key is never an argument, so that it stays out
of the shell history and the process list.

  herald keys hash < shop.key`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			line, err := bufio.NewReader(e.stdin).ReadString('\n')
			key := strings.TrimSpace(line)
			if key == "" {
				return usagef("no key on standard input (%v)", err)
			}
			fmt.Fprintln(e.stdout, api.HashKey(key))
			return nil
		},
	}
}
