package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
)

// TestKubernetesPodsStartOnTheCluster runs each Deployment's container as
// the kubelet would, short of the kubelet: its command, its environment
// (values from the secrets resolved; optional secrets absent), and exactly
// the files its volumes mount, under a temporary root, with real secrets made
// as deploy/README.md makes them. The streams job applies the streams; every
// target must become ready, and an OTP sent to the dispatcher pod must be
// delivered by the provider-adapter pod. The bridge pod, its secret
// herald-bridge made for a PostgreSQL of the test, must be ready too and
// forward a row of the example outbox.
func TestKubernetesPodsStartOnTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster, PostgreSQL and five herald processes")
	}
	m := loadManifests(t)
	cluster := heraldtest.StartDeployCluster(t, "nats")
	root := t.TempDir()

	producer, keys := httpKeys(t)
	// The secrets' contents, "secret/<name>/<key>", as kubectl create secret makes them.
	secrets := map[string][]byte{
		"secret/herald-http-keys/keys.yaml": keys,
		"secret/herald-otp-keys/seal-key":   []byte(randomKey(t) + "\n"), // openssl's trailing newline
		"secret/herald-otp-keys/hash-key":   []byte(randomKey(t) + "\n"),
	}
	pg := heraldtest.StartPostgres(t)
	for k := range m.secrets["herald-bridge"].StringData {
		switch {
		case k == "HERALD_BRIDGE_KEY":
			secrets["secret/herald-bridge/"+k] = []byte(producer.Secret)
		case strings.HasSuffix(k, "_DSN"):
			secrets["secret/herald-bridge/"+k] = []byte(pg.DSN)
		default:
			t.Fatalf("secret herald-bridge: no value for %s here", k)
		}
	}
	ca, err := os.ReadFile(cluster.TLS.CA)
	if err != nil {
		t.Fatal(err)
	}
	secrets["secret/herald-nats-ca/ca.pem"] = ca
	for _, r := range access.Roles() {
		b, err := os.ReadFile(filepath.Join(cluster.CredsDir, access.CredsFile(r)))
		if err != nil {
			t.Fatal(err)
		}
		secrets["secret/herald-nats-creds-"+string(r)+"/"+access.CredsFile(r)] = b
	}
	// The cluster's client URL stands in for the chart's Service.
	cm := m.configMaps["herald-config"]
	for k, v := range cm.Data {
		secrets["configMap/herald-config/"+k] = []byte(strings.ReplaceAll(v, "nats://nats.herald.svc:4222", cluster.URLs))
	}
	rooted := strings.NewReplacer("/etc/herald", filepath.Join(root, "job/etc/herald"))

	// layout writes a container's mounted files where r puts them.
	layout := func(r *strings.Replacer, files map[string]string) {
		for p, src := range files {
			b, ok := secrets[src]
			if !ok {
				t.Fatalf("no content for %s (mounted at %s)", src, p)
			}
			if strings.HasPrefix(src, "configMap/") {
				b = []byte(r.Replace(string(b))) // herald.yaml's paths
			}
			path := r.Replace(p)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, b)
		}
	}

	job := m.jobs[0].Spec.Template.Spec
	layout(rooted, m.mountedFiles(t, job, job.Containers[0]))
	args := strings.Fields(rooted.Replace(strings.Join(job.Containers[0].Command[1:], " ")))
	args[slices.Index(args, "--nats")+1] = cluster.URLs
	if out, err := exec.Command(heraldBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("the streams job: %v\n%s", err, out)
	}

	urls := map[string]string{}
	for _, target := range deployedTargets() {
		pod := m.deployments[target].Spec.Template.Spec
		c := pod.Containers[0]
		// A pod per target: its own root, so that one target's files are not another's.
		rootedPod := strings.NewReplacer("/etc/herald", filepath.Join(root, target, "etc/herald"), "/var/lib/herald", filepath.Join(root, target, "var/lib/herald"))
		layout(rootedPod, m.mountedFiles(t, pod, c))
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env[e.Name] = rootedPod.Replace(e.Value)
			case e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef
				env[e.Name] = string(secrets["secret/"+ref.Name+"/"+ref.Key])
			default:
				t.Fatalf("%s: env %s from an unsupported source", target, e.Name)
			}
		}
		// envFrom: every key of the secret, as kubectl made it; an optional
		// secret not made here is absent.
		for _, ef := range c.EnvFrom {
			if ef.SecretRef == nil {
				t.Fatalf("%s: envFrom other than a secret", target)
			}
			name, optional := ef.SecretRef.Name, ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
			for k := range m.secrets[name].StringData {
				v, ok := secrets["secret/"+name+"/"+k]
				switch {
				case ok:
					env[k] = string(v)
				case !optional:
					t.Fatalf("%s: no content for secret %s's %s, which is not optional", target, name, k)
				}
			}
		}
		if target == app.Bridge {
			// The dispatchers' Service is the dispatcher pod here.
			env["HERALD_BRIDGE_HERALD_URL"] = urls[app.Dispatcher]
		}
		port := freePort(t)
		env["HERALD_HTTP_ADDR"] = strings.Replace(env["HERALD_HTTP_ADDR"], ":8080", ":"+port, 1)
		urls[target] = "http://127.0.0.1:" + port
		args := strings.Fields(rootedPod.Replace(strings.Join(c.Command[1:], " ")))
		if err := os.MkdirAll(flagValue(t, args, "--data"), 0o700); err != nil {
			t.Fatal(err)
		}
		startTarget(t, target, args, env)
	}
	servesAnOTP(t, urls, producer.Secret, "provider-adapter pod")
	forwardsAnOutboxRow(t, pg.DSN, urls[app.Bridge])
}
