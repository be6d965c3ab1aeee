// Package deploy_test checks that what deploy/ ships starts: every command
// line of the systemd units, the Kubernetes manifests and the container image
// is one the herald binary accepts, and the files agree with each other on
// names, keys, mounts and secrets.
package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/logging"
	"github.com/heraldhq/herald/services/bridge"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/streams"
)

// heraldBin is the herald binary built from this tree by TestMain.
var heraldBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "herald-deploy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	heraldBin = filepath.Join(dir, "herald")
	args := []string{"build", "-o", heraldBin}
	if raceEnabled {
		// The start tests run the binary: under race, it runs with the
		// race detector too.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/heraldhq/herald/services/herald")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building herald: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// deployedTargets are the targets deploy/ runs, each in its own units and
// pods: the platform's four and the bridge.
func deployedTargets() []string { return append(app.AllTargets(), app.Bridge) }

// requireCommandLine fails unless the herald binary accepts args: every flag
// exists and its value parses (herald <args> --help parses them all and runs
// nothing), and a serve command's --target names real targets.
func requireCommandLine(t *testing.T, args []string) {
	t.Helper()
	cmd := exec.Command(heraldBin, append(append([]string{}, args...), "--help")...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("herald refuses the command line %q (exit %d): %s", args, ee.ExitCode(), stderr.String())
		}
		t.Fatalf("running herald: %v", err)
	}
	if len(args) > 0 && args[0] == "serve" {
		if _, err := app.ParseTargets(flagValue(t, args, "--target")); err != nil {
			t.Fatalf("command line %q: %v", args, err)
		}
	}
}

// flagValue returns the value of a "--flag value" pair of args.
func flagValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("command line %q has no %s", args, flag)
	return ""
}

// checkHeraldYAML decodes a herald.yaml's core sections as herald serve does
// (strictly: a renamed key is an error) and returns its nats section.
func checkHeraldYAML(t *testing.T, source string, b []byte) bus.Config {
	t.Helper()
	f, err := config.Parse(source, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CheckKnown("nats", "streams", "log", "http", "bridge"); err != nil {
		t.Fatal(err)
	}
	nats, st, lg := bus.DefaultConfig(), streams.DefaultConfig(), logging.DefaultConfig()
	for key, into := range map[string]any{"nats": &nats, "streams": &st, "log": &lg} {
		if err := f.Section(key, into); err != nil {
			t.Fatal(err)
		}
	}
	if nats.Embedded() {
		t.Errorf("%s: no nats.url: the targets would each embed a server", source)
	}
	if st.Replicas != 3 {
		t.Errorf("%s: streams.replicas = %d, want 3 on the cluster", source, st.Replicas)
	}
	return nats
}

// bridgeSecrets decodes a herald.yaml's bridge section as herald serve
// --target bridge does (strictly, every bridge checked) and returns the
// environment variables that must carry its brokers' credentials, one per
// bridge: herald.yaml holds none. Placeholders stand in for them here.
func bridgeSecrets(t *testing.T, source string, b []byte) []string {
	t.Helper()
	var names struct {
		Bridge struct {
			AMQP []struct {
				Name string `yaml:"name"`
				URL  string `yaml:"url"`
			} `yaml:"amqp"`
			Outbox []struct {
				Name string `yaml:"name"`
				DSN  string `yaml:"dsn"`
			} `yaml:"outbox"`
		} `yaml:"bridge"`
	}
	if err := yaml.Unmarshal(b, &names); err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	var env []string
	for _, a := range names.Bridge.AMQP {
		if a.URL != "" {
			t.Errorf("%s: bridge.amqp %s has its url inline: it is a secret's", source, a.Name)
		}
		e := bridgeEnv(a.Name, "URL")
		t.Setenv(e, "amqp://placeholder@localhost:5672/")
		env = append(env, e)
	}
	for _, o := range names.Bridge.Outbox {
		if o.DSN != "" {
			t.Errorf("%s: bridge.outbox %s has its dsn inline: it is a secret's", source, o.Name)
		}
		e := bridgeEnv(o.Name, "DSN")
		t.Setenv(e, "postgres://placeholder@localhost:5432/db")
		env = append(env, e)
	}
	f, err := config.Parse(source, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bridge.LoadConfig(f, api.DefaultConfig()); err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	if len(env) == 0 {
		t.Fatalf("%s: no bridge configured: herald serve --target bridge would not start", source)
	}
	return env
}

// bridgeEnv is the variable a bridge's connection string comes from
// (docs/bridges.md): HERALD_BRIDGE_<NAME>_<KEY>.
func bridgeEnv(name, key string) string {
	return "HERALD_BRIDGE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + key
}
