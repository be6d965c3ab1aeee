package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
)

// TestSystemdLayoutStartsEveryTargetOnTheCluster runs what the units run, as
// the README installs it: the 3-node cluster of deploy/nats, herald.yaml from
// herald-cluster.yaml, the shared and per-target environment files (keys
// filled in, /etc/herald and /var/lib under a temporary root, free ports),
// each target's ExecStart as its own process. Every target must become ready
// on its non-loopback address, and an OTP sent to the dispatcher must be
// delivered by the separate provider adapter (they share the seal key). The
// bridge, with its drop-in's secrets file filled in for a PostgreSQL of the
// test, must be ready too and forward a row of the example outbox.
func TestSystemdLayoutStartsEveryTargetOnTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster, PostgreSQL and five herald processes")
	}
	cluster := heraldtest.StartDeployCluster(t, "nats")
	root := t.TempDir()
	etc := filepath.Join(root, "etc/herald")
	if err := os.MkdirAll(filepath.Join(etc, "nats/tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The credentials of the roles the targets run (no operator-admin) and the CA.
	for _, r := range []access.Role{access.OperatorRead, access.Dispatcher, access.Producer, access.ProviderAdapter, access.Incident, access.Notifier, access.Bridge} {
		copyFile(t, filepath.Join(cluster.CredsDir, access.CredsFile(r)), filepath.Join(etc, "nats", access.CredsFile(r)))
	}
	copyFile(t, cluster.TLS.CA, filepath.Join(etc, "nats/tls/ca.pem"))

	conf, err := os.ReadFile("herald-cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	conf = []byte(strings.Replace(string(conf), "nats://n1.internal:4222,nats://n2.internal:4222,nats://n3.internal:4222", cluster.URLs, 1))
	writeFile(t, filepath.Join(etc, "herald.yaml"), conf)

	producer, keys := httpKeys(t)
	writeFile(t, filepath.Join(etc, "http-keys.yaml"), keys)

	// The shared environment file as an operator fills it in.
	shared := envFile(t, "systemd/env/herald.env")
	shared["OTP_SEAL_KEY"], shared["OTP_HASH_KEY"] = randomKey(t), randomKey(t)
	for k, v := range shared {
		shared[k] = strings.ReplaceAll(v, "/etc/herald", etc)
	}

	// The streams, as the README applies them (operator-admin stays off the targets).
	apply := exec.Command(heraldBin, "streams", "apply", "--config", filepath.Join(etc, "herald.yaml"), "--nats", cluster.URLs,
		"--creds", filepath.Join(cluster.CredsDir, access.CredsFile(access.OperatorAdmin)), "--ca", cluster.TLS.CA, "--replicas", "3")
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("herald streams apply: %v\n%s", err, out)
	}

	// The bridge's secrets file, as an operator fills it in: its key, and
	// the example outbox's DSN.
	pg := heraldtest.StartPostgres(t)
	bridgeSecrets := envFile(t, "systemd/env/bridge-secrets.env")
	for k := range bridgeSecrets {
		switch {
		case k == "HERALD_BRIDGE_KEY":
			bridgeSecrets[k] = producer.Secret
		case strings.HasSuffix(k, "_DSN"):
			bridgeSecrets[k] = pg.DSN
		default:
			t.Fatalf("bridge-secrets.env: no value for %s here", k)
		}
	}

	svc := unitOptions(t, "systemd/herald@.service")["Service"]
	exec := svc["ExecStart"][0]
	urls := map[string]string{}
	for _, target := range deployedTargets() {
		own := envFile(t, filepath.Join("systemd/env", target+".env"))
		host, _, err := net.SplitHostPort(own["HERALD_HTTP_ADDR"])
		if err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		own["HERALD_HTTP_ADDR"] = net.JoinHostPort(host, port)
		urls[target] = "http://127.0.0.1:" + port
		args := strings.Fields(strings.NewReplacer("%i", target, "%S", filepath.Join(root, "var/lib"), "/etc/herald", etc).Replace(exec))
		if err := os.MkdirAll(flagValue(t, args, "--data"), 0o700); err != nil {
			t.Fatal(err)
		}
		envs := []map[string]string{shared, own}
		if target == app.Bridge {
			own["HERALD_BRIDGE_HERALD_URL"] = urls[app.Dispatcher]
			envs = append(envs, bridgeSecrets)
		}
		if files := unitEnvFiles(t, svc, target); len(files) != len(envs) {
			t.Fatalf("herald@%s reads %q: fill them in here", target, files)
		}
		startTarget(t, target, args[1:], envs...)
	}
	servesAnOTP(t, urls, producer.Secret, "provider adapter process")
	forwardsAnOutboxRow(t, pg.DSN, urls[app.Bridge])
}

// forwardsAnOutboxRow commits an event into the example outbox (shop, table
// herald_outbox, docs/bridges.md) and waits until the bridge at url counts
// it forwarded to EVENTS: the bridge role's credentials, the DSN from its
// secrets and the section work as deployed.
func forwardsAnOutboxRow(t *testing.T, dsn, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO herald_outbox (uuid, payload, metadata, transaction_id)
		VALUES ('deploy-test-1', $1, '{}', pg_current_xact_id())`,
		`{"specversion":"1.0","id":"deploy-test-1","type":"integration_call_completed","source":"shop",
		  "data":{"integration":"stripe","operation":"charges.create","statusCode":200,"latencyMs":120}}`); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	heraldtest.Eventually(t, 30*time.Second, "the outbox row forwarded", func() bool {
		resp, err := client.Get(url + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "herald_bridge_messages_total{") && strings.Contains(line, `bridge="shop"`) &&
				strings.Contains(line, `result="forwarded"`) && strings.HasSuffix(line, " 1") {
				return true
			}
		}
		return false
	})
}

// startTarget runs herald with args and the two environment files, as
// systemd would, and stops it (SIGTERM, as systemctl stop) at the end.
func startTarget(t *testing.T, target string, args []string, envs ...map[string]string) {
	t.Helper()
	cmd := exec.Command(heraldBin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for _, env := range envs {
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), target+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("herald@%s stopped with %v", target, err)
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("herald@%s did not stop within 60 s", target)
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("herald@%s log:\n%s", target, b)
			}
		}
	})
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// servesAnOTP waits until every target answers /readyz 200, then sends an
// OTP through the dispatcher with the producer key: delivered by another
// process (who), the whole platform works as deployed.
func servesAnOTP(t *testing.T, urls map[string]string, secret, who string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	for target, url := range urls {
		heraldtest.Eventually(t, 60*time.Second, target+" ready", func() bool {
			resp, err := client.Get(url + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	req, _ := http.NewRequest(http.MethodPost, urls[app.Dispatcher]+"/v1/otp/send", strings.NewReader(`{"app":"demo","phone":"+919876543210"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sent struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sent); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || sent.Status != "sent" {
		t.Fatalf("POST /v1/otp/send: %d %q, want 200 sent (delivered by the %s)", resp.StatusCode, sent.Status, who)
	}
}

// httpKeys is the HTTP keys file an operator writes with herald keys new:
// a producer key for the demo app and an operator key; the producer's key
// is returned to send with.
func httpKeys(t *testing.T) (heraldtest.Key, []byte) {
	t.Helper()
	producer := heraldtest.ProducerKey(t, "shop", []string{"demo"}, nil)
	operator := heraldtest.OperatorKey(t, "ops")
	keys, err := yaml.Marshal(struct {
		Keys []api.KeyConfig `yaml:"keys"`
	}{[]api.KeyConfig{producer.Config, operator.Config}})
	if err != nil {
		t.Fatal(err)
	}
	return producer, keys
}
