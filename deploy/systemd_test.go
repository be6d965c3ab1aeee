package deploy_test

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/heraldhq/herald/services/herald/app"
)

// unitOptions reads a unit file into section → key → values (keys may repeat).
func unitOptions(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]map[string][]string{}
	for _, o := range opts {
		if out[o.Section] == nil {
			out[o.Section] = map[string][]string{}
		}
		out[o.Section][o.Name] = append(out[o.Section][o.Name], o.Value)
	}
	return out
}

// expandSpecifiers replaces the specifiers the unit uses, as systemd does for
// a system unit instance.
func expandSpecifiers(s, instance string) string {
	return strings.NewReplacer("%i", instance, "%S", "/var/lib", "%%", "%").Replace(s)
}

// envFile reads a systemd environment file (KEY=VALUE lines, # comments).
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSystemdUnitStartsEveryTarget(t *testing.T) {
	u := unitOptions(t, "systemd/herald@.service")
	svc := u["Service"]
	if len(svc["ExecStart"]) != 1 {
		t.Fatalf("ExecStart = %q, want one command", svc["ExecStart"])
	}
	shared := envFile(t, "systemd/env/herald.env")
	// What every target needs from the shared file, and why.
	for key, why := range map[string]string{
		"OTP_SEAL_KEY":          "dispatcher and provider adapter must share it, or seals do not open",
		"OTP_HASH_KEY":          "every dispatcher must share it, or codes do not verify",
		"HERALD_HTTP_KEYS_FILE": "a non-loopback HTTP address refuses to start without keys",
		"HERALD_NATS_CREDS_DIR": "each role's credentials",
		"HERALD_NATS_CA":        "the cluster speaks TLS",
	} {
		if shared[key] == "" {
			t.Errorf("systemd/env/herald.env sets no %s: %s", key, why)
		}
	}
	addrs := map[string]string{}
	for _, target := range app.AllTargets() {
		t.Run(target, func(t *testing.T) {
			args := strings.Fields(expandSpecifiers(svc["ExecStart"][0], target))
			if args[0] != "/usr/local/bin/herald" {
				t.Fatalf("ExecStart runs %s", args[0])
			}
			requireCommandLine(t, args[1:])
			if got := flagValue(t, args, "--target"); got != target {
				t.Errorf("--target %s in herald@%s", got, target)
			}
			// The data directory is the unit's own state directory, the one
			// path it may write.
			data := flagValue(t, args, "--data")
			if want := filepath.Join("/var/lib", expandSpecifiers(svc["StateDirectory"][0], target)); data != want {
				t.Errorf("--data %s, but StateDirectory is %s", data, want)
			}
			if rw := expandSpecifiers(strings.Join(svc["ReadWritePaths"], " "), target); rw != data {
				t.Errorf("ReadWritePaths=%s, want the data directory %s only", rw, data)
			}
			var files []string
			for _, f := range svc["EnvironmentFile"] {
				files = append(files, expandSpecifiers(f, target))
			}
			own := "/etc/herald/" + target + ".env"
			if !slices.Equal(files, []string{"/etc/herald/herald.env", own}) {
				t.Fatalf("EnvironmentFile = %q, want the shared file and %s, both required", files, own)
			}
			env := envFile(t, filepath.Join("systemd/env", target+".env"))
			addr := env["HERALD_HTTP_ADDR"]
			if _, _, err := net.SplitHostPort(addr); err != nil {
				t.Fatalf("%s.env: HERALD_HTTP_ADDR %q: %v", target, addr, err)
			}
			if other, dup := addrs[addr]; dup {
				t.Errorf("%s and %s both listen on %s", other, target, addr)
			}
			addrs[addr] = target
			if env["GOMEMLIMIT"] == "" {
				t.Errorf("%s.env sets no GOMEMLIMIT", target)
			}
		})
	}
	for key, want := range map[string]string{
		"User": "herald", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "CapabilityBoundingSet": "", "RestartPreventExitStatus": "2",
	} {
		if got := svc[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
}

func TestSystemdConfigIsClusterConfig(t *testing.T) {
	b, err := os.ReadFile("herald-cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checkHeraldYAML(t, "herald-cluster.yaml", b)
}
