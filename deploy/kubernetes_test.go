package deploy_test

import (
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/services/herald/app"
)

// manifests are the Kubernetes objects of deploy/kubernetes/herald and
// deploy/kubernetes/secrets, each decoded strictly into its API type: an
// unknown or misspelt field is an error, as it is for kubectl apply
// --validate=strict.
type manifests struct {
	deployments map[string]*appsv1.Deployment // by component label
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	jobs        []*batchv1.Job
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{deployments: map[string]*appsv1.Deployment{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	files, err := filepath.Glob("kubernetes/herald/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secretFiles, _ := filepath.Glob("kubernetes/secrets/*.yaml")
	for _, file := range append(files, secretFiles...) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(b), "\n---\n") {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s, document %d: %v", file, i+1, err)
			}
			var obj any
			switch meta.APIVersion + " " + meta.Kind {
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "batch/v1 Job":
				obj = &batchv1.Job{}
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			default:
				t.Fatalf("%s, document %d: unexpected %s %s", file, i+1, meta.APIVersion, meta.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s, document %d (%s): %v", file, i+1, meta.Kind, err)
			}
			switch o := obj.(type) {
			case *appsv1.Deployment:
				m.deployments[o.Spec.Template.Labels["app.kubernetes.io/component"]] = o
			case *corev1.Service:
				m.services = append(m.services, o)
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
			case *batchv1.Job:
				m.jobs = append(m.jobs, o)
			case *corev1.ConfigMap:
				m.configMaps[o.Name] = o
			case *corev1.Secret:
				if isSecretFile := strings.HasPrefix(file, "kubernetes/secrets/"); !isSecretFile {
					t.Errorf("%s: secret %s among the manifests applied as they are; templates go in kubernetes/secrets", file, o.Name)
				}
				m.secrets[o.Name] = o
			}
		}
	}
	return m
}

// secretKey fails unless the secret templates define name with key.
func (m *manifests) secretKey(t *testing.T, name, key string) {
	t.Helper()
	s, ok := m.secrets[name]
	if !ok {
		t.Errorf("secret %s is used but not in kubernetes/secrets", name)
		return
	}
	if _, ok := s.StringData[key]; !ok {
		t.Errorf("secret %s has no key %s", name, key)
	}
}

// mountedFiles lists the files a pod's volumes put under each mount of the
// container (path → "secret/<name>/<key>" or "configMap/<name>/<key>").
func (m *manifests) mountedFiles(t *testing.T, pod corev1.PodSpec, c corev1.Container) map[string]string {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	files := map[string]string{}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Fatalf("container %s mounts unknown volume %s", c.Name, vm.Name)
		}
		switch {
		case v.ConfigMap != nil:
			cm, ok := m.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
			for key := range cm.Data {
				files[path.Join(vm.MountPath, key)] = "configMap/" + cm.Name + "/" + key
			}
		case v.Secret != nil:
			s, ok := m.secrets[v.Secret.SecretName]
			if !ok {
				t.Fatalf("volume %s: no secret %s in kubernetes/secrets", v.Name, v.Secret.SecretName)
			}
			for key := range s.StringData {
				files[path.Join(vm.MountPath, key)] = "secret/" + s.Name + "/" + key
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.Secret == nil {
					t.Fatalf("volume %s: only secrets are projected", v.Name)
				}
				for _, item := range src.Secret.Items {
					m.secretKey(t, src.Secret.Name, item.Key)
					files[path.Join(vm.MountPath, item.Path)] = "secret/" + src.Secret.Name + "/" + item.Key
				}
			}
		case v.EmptyDir != nil:
		default:
			t.Fatalf("volume %s: unexpected kind", v.Name)
		}
	}
	return files
}

func envValue(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// rolesOf are the NATS roles a target's process connects with: its own
// (the dispatcher also publishes POST /v1/events as producer) and
// operator-read, the process's own connection (readiness).
func rolesOf(target string) []string {
	roles := []string{string(access.OperatorRead), target}
	if target == app.Dispatcher {
		roles = append(roles, string(access.Producer))
	}
	slices.Sort(roles)
	return roles
}

func TestKubernetesManifestsStartEveryTarget(t *testing.T) {
	m := loadManifests(t)
	cm, ok := m.configMaps["herald-config"]
	if !ok {
		t.Fatal("no ConfigMap herald-config")
	}
	nats := checkHeraldYAML(t, "ConfigMap herald-config", []byte(cm.Data["herald.yaml"]))

	var targets []string
	for target := range m.deployments {
		targets = append(targets, target)
	}
	slices.Sort(targets)
	all := deployedTargets()
	slices.Sort(all)
	if !slices.Equal(targets, all) {
		t.Fatalf("Deployments for %q, want one per target %q", targets, all)
	}
	otpKeys := map[string]*corev1.SecretKeySelector{}
	for _, target := range deployedTargets() {
		t.Run(target, func(t *testing.T) {
			d := m.deployments[target]
			replicas := *d.Spec.Replicas
			switch target {
			case app.Incident, app.Notifier:
				// one active (the lease holder), one hot standby
				if replicas != 2 {
					t.Errorf("replicas = %d, want 2: one writer by lease, one standby", replicas)
				}
			default:
				if replicas < 2 {
					t.Errorf("replicas = %d, want at least 2", replicas)
				}
			}
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			if c.Command[0] != "/usr/local/bin/herald" {
				t.Fatalf("command runs %s", c.Command[0])
			}
			args := c.Command[1:]
			requireCommandLine(t, args)
			if got := flagValue(t, args, "--target"); got != target {
				t.Errorf("--target %s in the %s Deployment", got, target)
			}
			files := m.mountedFiles(t, pod, c)
			if src := files[flagValue(t, args, "--config")]; src != "configMap/herald-config/herald.yaml" {
				t.Errorf("--config %s is %q, want herald-config's herald.yaml", flagValue(t, args, "--config"), src)
			}

			// NATS: exactly the roles of the target, and the CA.
			var roles []string
			for p, src := range files {
				if dir, file := path.Split(p); path.Clean(dir) == nats.CredsDir && strings.HasSuffix(file, ".creds") {
					role := strings.TrimSuffix(file, ".creds")
					if src != "secret/herald-nats-creds-"+role+"/"+file {
						t.Errorf("%s comes from %s", p, src)
					}
					roles = append(roles, role)
				}
			}
			slices.Sort(roles)
			if want := rolesOf(target); !slices.Equal(roles, want) {
				t.Errorf("credentials in %s: %q, want %q", nats.CredsDir, roles, want)
			}
			if files[nats.CAFile] != "secret/herald-nats-ca/ca.pem" {
				t.Errorf("nats.caFile %s is %q", nats.CAFile, files[nats.CAFile])
			}

			// HTTP: beyond loopback, so keys; the probes on the port listened on.
			addr, _ := envValue(c, "HERALD_HTTP_ADDR")
			if !strings.HasPrefix(addr.Value, "0.0.0.0:") {
				t.Fatalf("HERALD_HTTP_ADDR = %q, want 0.0.0.0:<port> (reachable by the kubelet and Services)", addr.Value)
			}
			port, _ := strconv.Atoi(strings.TrimPrefix(addr.Value, "0.0.0.0:"))
			keys, _ := envValue(c, "HERALD_HTTP_KEYS_FILE")
			if src := files[keys.Value]; src != "secret/herald-http-keys/keys.yaml" {
				t.Errorf("HERALD_HTTP_KEYS_FILE %q is %q, want the secret herald-http-keys", keys.Value, src)
			}
			if len(c.Ports) != 1 || c.Ports[0].Name != "http" || int(c.Ports[0].ContainerPort) != port {
				t.Errorf("ports %v, want http on %d", c.Ports, port)
			}
			for name, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
				want := "/healthz"
				if name == "readiness" {
					want = "/readyz"
				}
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
					t.Errorf("%s probe %+v, want GET %s on http", name, probe, want)
				}
			}

			// OTP keys: the dispatcher and the adapter read the same secret.
			for _, name := range []string{"OTP_SEAL_KEY", "OTP_HASH_KEY"} {
				e, ok := envValue(c, name)
				if target != app.Dispatcher && target != app.ProviderAdapter {
					if ok {
						t.Errorf("%s has %s, which it does not use", target, name)
					}
					continue
				}
				if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Fatalf("%s is not from a secret", name)
				}
				ref := e.ValueFrom.SecretKeyRef
				m.secretKey(t, ref.Name, ref.Key)
				if prev, ok := otpKeys[name]; ok && (prev.Name != ref.Name || prev.Key != ref.Key) {
					t.Errorf("%s from %s/%s here, from %s/%s in the other: seals would not open", name, ref.Name, ref.Key, prev.Name, prev.Key)
				}
				otpKeys[name] = ref
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					if _, ok := m.secrets[ef.SecretRef.Name]; !ok {
						t.Errorf("envFrom secret %s not in kubernetes/secrets", ef.SecretRef.Name)
					}
				}
			}

			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources %v: want cpu and memory requests and a memory limit", c.Resources)
			}
			if gml, ok := envValue(c, "GOMEMLIMIT"); !ok || gml.Value == "" {
				t.Error("no GOMEMLIMIT under the memory limit")
			}
			if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("container security context %+v: want no privilege escalation, read-only root", sc)
			}
			if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Error("pod may run as root")
			}

			labels := d.Spec.Template.Labels
			var svc, pdb int
			for _, s := range m.services {
				if selects(s.Spec.Selector, labels) {
					svc++
					if len(s.Spec.Ports) == 0 || s.Spec.Ports[0].TargetPort.String() != "http" {
						t.Errorf("Service %s does not target the http port", s.Name)
					}
				}
			}
			for _, p := range m.pdbs {
				if selects(p.Spec.Selector.MatchLabels, labels) {
					pdb++
					if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() < 1 || p.Spec.MinAvailable.IntValue() >= int(replicas) {
						t.Errorf("PodDisruptionBudget %s minAvailable %v with %d replicas", p.Name, p.Spec.MinAvailable, replicas)
					}
				}
			}
			if svc != 1 || pdb != 1 {
				t.Errorf("%d Services and %d PodDisruptionBudgets select the pods, want 1 each", svc, pdb)
			}
		})
	}
}

// TestKubernetesBridgeSecrets checks where the bridge's secrets are: its
// producer key and the connection string of every bridge in herald-config's
// bridge section in the secret herald-bridge, which only the bridge's pods
// read, in full (not optional: it cannot run without); none inline; OTP
// sends to the dispatchers' Service.
func TestKubernetesBridgeSecrets(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps["herald-config"]
	want := append([]string{"HERALD_BRIDGE_KEY"}, bridgeSecrets(t, "ConfigMap herald-config", []byte(cm.Data["herald.yaml"]))...)
	for _, k := range want {
		m.secretKey(t, "herald-bridge", k)
	}
	for target, d := range m.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		var fromBridge bool
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil && ef.SecretRef.Name == "herald-bridge" {
				fromBridge = true
				if ef.SecretRef.Optional == nil || *ef.SecretRef.Optional {
					t.Errorf("%s: envFrom herald-bridge is optional: without it the bridge would exit at start", target)
				}
			}
		}
		if fromBridge != (target == app.Bridge) {
			t.Errorf("%s: envFrom herald-bridge is %v: only the bridge reads it", target, fromBridge)
		}
		for _, e := range c.Env {
			if slices.Contains(want, e.Name) || strings.HasPrefix(e.Name, "HERALD_BRIDGE_") && e.Name != "HERALD_BRIDGE_HERALD_URL" {
				t.Errorf("%s: env %s set in the manifest: it is herald-bridge's", target, e.Name)
			}
		}
	}
	c := m.deployments[app.Bridge].Spec.Template.Spec.Containers[0]
	e, _ := envValue(c, "HERALD_BRIDGE_HERALD_URL")
	u, err := url.Parse(e.Value)
	if err != nil || u.Scheme != "http" {
		t.Fatalf("HERALD_BRIDGE_HERALD_URL %q: want the dispatchers' Service (%v)", e.Value, err)
	}
	dispatchers := m.deployments[app.Dispatcher].Spec.Template.Labels
	var found bool
	for _, s := range m.services {
		if s.Name+"."+s.Namespace+".svc" == u.Hostname() {
			found = true
			port := "80"
			if len(s.Spec.Ports) > 0 {
				port = strconv.Itoa(int(s.Spec.Ports[0].Port))
			}
			if u.Port() != "" && u.Port() != port || u.Port() == "" && port != "80" {
				t.Errorf("HERALD_BRIDGE_HERALD_URL %s, but Service %s listens on %s", u, s.Name, port)
			}
			if !selects(s.Spec.Selector, dispatchers) {
				t.Errorf("HERALD_BRIDGE_HERALD_URL %s: Service %s does not select the dispatchers", u, s.Name)
			}
		}
	}
	if !found {
		t.Errorf("HERALD_BRIDGE_HERALD_URL %s names no Service of the manifests", u)
	}
}

// selects reports whether a selector matches labels (and is not empty).
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesStreamsJobIsTheOnlyAdmin(t *testing.T) {
	m := loadManifests(t)
	if len(m.jobs) != 1 {
		t.Fatalf("%d Jobs, want the streams apply job", len(m.jobs))
	}
	pod := m.jobs[0].Spec.Template.Spec
	c := pod.Containers[0]
	if c.Command[0] != "/usr/local/bin/herald" || !slices.Equal(c.Command[1:3], []string{"streams", "apply"}) {
		t.Fatalf("job runs %q", c.Command)
	}
	requireCommandLine(t, c.Command[1:])
	files := m.mountedFiles(t, pod, c)
	if src := files[flagValue(t, c.Command, "--creds")]; src != "secret/herald-nats-creds-operator-admin/operator-admin.creds" {
		t.Errorf("--creds is %q", src)
	}
	if src := files[flagValue(t, c.Command, "--ca")]; src != "secret/herald-nats-ca/ca.pem" {
		t.Errorf("--ca is %q", src)
	}
	for target, d := range m.deployments {
		for p := range m.mountedFiles(t, d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0]) {
			if strings.HasSuffix(p, "/operator-admin.creds") {
				t.Errorf("%s mounts operator-admin: only the streams job may", target)
			}
		}
	}
}

// TestNATSChartValuesMatchSecrets checks the chart's values against the
// secrets they mount and the include they name (the keys themselves are the
// nats chart 2.x's: config.cluster, config.jetstream, config.nats.tls,
// tlsCA, container.patch, podTemplate.patch).
func TestNATSChartValuesMatchSecrets(t *testing.T) {
	m := loadManifests(t)
	b, err := os.ReadFile("kubernetes/nats/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type tlsValues struct {
		Enabled    bool           `json:"enabled"`
		SecretName string         `json:"secretName"`
		Cert       string         `json:"cert"`
		Key        string         `json:"key"`
		Merge      map[string]any `json:"merge"`
	}
	type patch struct {
		Op    string         `json:"op"`
		Path  string         `json:"path"`
		Value map[string]any `json:"value"`
	}
	var v struct {
		FullnameOverride string `json:"fullnameOverride"`
		Config           struct {
			Cluster struct {
				Enabled  bool      `json:"enabled"`
				Replicas int       `json:"replicas"`
				TLS      tlsValues `json:"tls"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled bool `json:"enabled"`
					PVC     struct {
						Enabled bool   `json:"enabled"`
						Size    string `json:"size"`
					} `json:"pvc"`
				} `json:"fileStore"`
				MemoryStore struct {
					Enabled bool `json:"enabled"`
				} `json:"memoryStore"`
				Merge map[string]any `json:"merge"`
			} `json:"jetstream"`
			NATS struct {
				TLS tlsValues `json:"tls"`
			} `json:"nats"`
			Merge map[string]any `json:"merge"`
		} `json:"config"`
		TLSCA struct {
			Enabled    bool   `json:"enabled"`
			SecretName string `json:"secretName"`
			Key        string `json:"key"`
		} `json:"tlsCA"`
		Container struct {
			Patch []patch           `json:"patch"`
			Env   map[string]string `json:"env"`
			Merge map[string]any    `json:"merge"`
		} `json:"container"`
		PodTemplate struct {
			Patch                     []patch        `json:"patch"`
			TopologySpreadConstraints map[string]any `json:"topologySpreadConstraints"`
		} `json:"podTemplate"`
		NatsBox struct {
			Enabled bool `json:"enabled"`
		} `json:"natsBox"`
	}
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 || !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled {
		t.Errorf("want a 3-node JetStream cluster on file storage: %+v", c)
	}
	for name, tls := range map[string]tlsValues{"config.nats.tls": c.NATS.TLS, "config.cluster.tls": c.Cluster.TLS} {
		if !tls.Enabled {
			t.Errorf("%s is off", name)
		}
		m.secretKey(t, tls.SecretName, tls.Cert)
		m.secretKey(t, tls.SecretName, tls.Key)
	}
	if c.Cluster.TLS.Merge["verify"] != true {
		t.Error("routes do not verify each other's certificates")
	}
	if !v.TLSCA.Enabled {
		t.Error("tlsCA is off")
	}
	m.secretKey(t, v.TLSCA.SecretName, v.TLSCA.Key)

	// The include names auth.conf where the patches mount it.
	include, _ := c.Merge["$include"].(string)
	authFile := path.Clean(path.Join("/etc/nats-config", include))
	var mountPath, volume string
	for _, p := range v.Container.Patch {
		if p.Op == "add" && p.Path == "/volumeMounts/-" {
			mountPath, _ = p.Value["mountPath"].(string)
			volume, _ = p.Value["name"].(string)
		}
	}
	var secret string
	for _, p := range v.PodTemplate.Patch {
		if p.Op == "add" && p.Path == "/spec/volumes/-" && p.Value["name"] == volume {
			s, _ := p.Value["secret"].(map[string]any)
			secret, _ = s["secretName"].(string)
		}
	}
	if path.Dir(authFile) != mountPath || volume == "" {
		t.Errorf("config.merge includes %s, but the secret volume %q is mounted at %q", authFile, volume, mountPath)
	}
	m.secretKey(t, secret, path.Base(authFile))

	// Herald's URL is the chart's client Service, in the namespace of the manifests.
	cm := m.configMaps["herald-config"]
	nats := checkHeraldYAML(t, "ConfigMap herald-config", []byte(cm.Data["herald.yaml"]))
	if want := "nats://" + v.FullnameOverride + "." + cm.Namespace + ".svc:4222"; nats.URL != want {
		t.Errorf("herald.yaml nats.url %s, want the chart's Service %s", nats.URL, want)
	}
}
