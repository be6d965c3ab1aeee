package deploy_test

import (
	"bufio"
	"net"
	"net/url"
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
	for _, target := range deployedTargets() {
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
			files := unitEnvFiles(t, svc, target)
			own := "/etc/herald/" + target + ".env"
			want := []string{"/etc/herald/herald.env", own}
			if target == app.Bridge {
				want = append(want, "/etc/herald/bridge-secrets.env")
			}
			if !slices.Equal(files, want) {
				t.Fatalf("EnvironmentFile = %q, want %q, all required", files, want)
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

// unitEnvFiles are the environment files of herald@target: the template's,
// then those of its drop-ins (systemd/herald@<target>.service.d/*.conf), in
// the order systemd reads them.
func unitEnvFiles(t *testing.T, svc map[string][]string, target string) []string {
	t.Helper()
	var files []string
	for _, f := range svc["EnvironmentFile"] {
		files = append(files, expandSpecifiers(f, target))
	}
	dropIns, err := filepath.Glob(filepath.Join("systemd", "herald@"+target+".service.d", "*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dropIns {
		files = append(files, unitOptions(t, d)["Service"]["EnvironmentFile"]...)
	}
	return files
}

// TestSystemdBridgeSecrets checks where herald@bridge's secrets are: its
// producer key and every broker's connection string of herald-cluster.yaml in
// the root-only file of its drop-in, as placeholders; none in bridge.env
// (installed 0644) or herald.env (every target's); OTP sends to the
// dispatcher's port.
func TestSystemdBridgeSecrets(t *testing.T) {
	b, err := os.ReadFile("herald-cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"HERALD_BRIDGE_KEY"}, bridgeSecrets(t, "herald-cluster.yaml", b)...)
	slices.Sort(want)
	secrets := envFile(t, "systemd/env/bridge-secrets.env")
	var got []string
	for k, v := range secrets {
		got = append(got, k)
		if !strings.HasPrefix(v, "<") || !strings.HasSuffix(v, ">") {
			t.Errorf("bridge-secrets.env: %s is not a <placeholder>: no secret in the repository", k)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("bridge-secrets.env sets %q, want %q (the key and one per bridge of herald-cluster.yaml)", got, want)
	}
	own, shared := envFile(t, "systemd/env/bridge.env"), envFile(t, "systemd/env/herald.env")
	for _, k := range want {
		if _, ok := own[k]; ok {
			t.Errorf("bridge.env sets %s: a secret, for bridge-secrets.env", k)
		}
		if _, ok := shared[k]; ok {
			t.Errorf("herald.env sets %s: every target would have it", k)
		}
	}
	u, err := url.Parse(own["HERALD_BRIDGE_HERALD_URL"])
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		t.Fatalf("bridge.env: HERALD_BRIDGE_HERALD_URL %q is not the dispatcher's URL (%v)", own["HERALD_BRIDGE_HERALD_URL"], err)
	}
	_, port, _ := net.SplitHostPort(envFile(t, "systemd/env/dispatcher.env")["HERALD_HTTP_ADDR"])
	if u.Port() != port {
		t.Errorf("HERALD_BRIDGE_HERALD_URL %s, but herald@dispatcher listens on port %s", u, port)
	}
	for _, target := range app.AllTargets() {
		if d, _ := filepath.Glob(filepath.Join("systemd", "herald@"+target+".service.d", "*")); len(d) > 0 {
			t.Errorf("drop-ins %q: only the bridge has its own", d)
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
