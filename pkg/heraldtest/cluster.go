package heraldtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// Cluster is a 3-node JetStream cluster in the test's process.
type Cluster struct {
	Servers []*server.Server
	URLs    string // comma-separated client URLs

	t    testing.TB
	opts []*server.Options
}

// StartCluster starts n clustered servers with JetStream on temporary
// directories, open to any client (for the bus's own tests; Herald's
// clusters are StartDeployCluster's), and waits until the cluster has a
// meta leader and every node is current. They are shut down when the test
// ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := routePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{t: t}
	var urls []string
	for i := range n {
		opts := &server.Options{
			ServerName:     fmt.Sprintf("n%d", i+1),
			Host:           "127.0.0.1",
			Port:           server.RANDOM_PORT,
			JetStream:      true,
			StoreDir:       t.TempDir(),
			NoSigs:         true,
			MaxControlLine: access.MaxControlLine,
			Cluster:        server.ClusterOpts{Name: "heraldtest", Host: "127.0.0.1", Port: ports[i]},
			Routes:         server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("node %d not ready", i+1)
		}
		c.Servers = append(c.Servers, s)
		c.opts = append(c.opts, opts)
		// Restarts keep the client port, so clients reconnect to it.
		opts.Port = s.Addr().(*net.TCPAddr).Port
		urls = append(urls, s.ClientURL())
		t.Cleanup(func() {
			c.Servers[i].Shutdown()
			c.Servers[i].WaitForShutdown()
		})
	}
	c.URLs = strings.Join(urls, ",")
	waitForMetaLeader(t, c.Servers)
	return c
}

// waitForMetaLeader waits until the cluster has one JetStream meta leader
// and every running node is current.
func waitForMetaLeader(t testing.TB, servers []*server.Server) {
	t.Helper()
	Eventually(t, 60*time.Second, "a JetStream meta leader and current nodes", func() bool {
		leaders := 0
		for _, s := range servers {
			if !s.Running() {
				continue
			}
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	})
}

// Kill stops the server named name at once and waits until it is gone.
func (c *Cluster) Kill(name string) {
	for _, s := range c.Servers {
		if s.Name() == name {
			s.Shutdown()
			s.WaitForShutdown()
			return
		}
	}
	c.t.Fatalf("no server %q", name)
}

// Restart starts the stopped server named name again, on its store
// directory and ports, and waits until it is current with the cluster.
func (c *Cluster) Restart(name string) {
	for i, s := range c.Servers {
		if s.Name() != name {
			continue
		}
		if s.Running() {
			c.t.Fatalf("server %s is running", name)
		}
		o := *c.opts[i]
		// NewServer derived these from the operator; it refuses both set.
		if len(o.TrustedOperators) > 0 {
			o.TrustedKeys = nil
		}
		ns, err := server.NewServer(&o)
		if err != nil {
			c.t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(30 * time.Second) {
			c.t.Fatalf("server %s not ready after a restart", name)
		}
		c.Servers[i] = ns
		Eventually(c.t, 60*time.Second, name+" current after its restart", ns.JetStreamIsCurrent)
		return
	}
	c.t.Fatalf("no server %q", name)
}

// routePorts picks free ports below the ephemeral range (32768–60999), so that
// no outgoing connection can take a route port between choosing and binding it.
func routePorts(t testing.TB, n int) []int {
	t.Helper()
	return freePorts(n)
}

// freePorts is routePorts for callers without a test (a package's shared server).
func freePorts(n int) []int {
	var ports []int
	for len(ports) < n {
		p := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil || slices.Contains(ports, p) {
			if ln != nil {
				ln.Close()
			}
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	return ports
}

// Connect connects a bus to the cluster and applies Herald's streams with
// three replicas.
func (c *Cluster) Connect(t testing.TB) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Connect(ctx, bus.ConnConfig{URL: c.URLs, Name: t.Name()}, cat, nil, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	defs, err := streams.Load(streams.Config{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Apply(ctx, b.JS, defs, 3); err != nil {
		t.Fatal(err)
	}
	return b
}

// SecureCluster is a cluster started from deploy/nats's configurations: in
// operator mode with Herald's credentials, TLS on client and route ports.
type SecureCluster struct {
	Cluster
	// CredsDir holds the roles' .creds, auth.conf and tls/ (herald nats init).
	CredsDir string
	TLS      *access.TLSFiles
}

// StartDeployCluster starts the nodes described by confDir/n*.conf
// (deploy/nats) as they are, but for their paths and ports: credentials and
// certificates made by the code of herald nats init --tls in a temporary
// directory stand in for /etc/nats/herald, stores and ports are the test's.
func StartDeployCluster(t testing.TB, confDir string) *SecureCluster {
	t.Helper()
	confs, err := filepath.Glob(filepath.Join(confDir, "n*.conf"))
	if err != nil || len(confs) == 0 {
		t.Fatalf("no node configurations in %s (%v)", confDir, err)
	}
	dir := t.TempDir()
	creds := Credentials(t, filepath.Join(dir, "herald"))
	tlsFiles, err := access.WriteTLS(creds.Dir, []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ports := deployPorts(t, confs)
	c := &SecureCluster{Cluster: Cluster{t: t}, CredsDir: creds.Dir, TLS: tlsFiles}
	var urls []string
	for _, path := range confs {
		name, out := rewriteDeployConf(t, path, dir, creds.Dir, ports)
		opts, err := server.ProcessConfigFile(out)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		opts.NoSigs = true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		s.SetLoggerV2(bus.NewServerLogger(Logger(t).With("node", name)), false, false, false)
		go s.Start()
		i := len(c.Servers)
		c.Servers = append(c.Servers, s)
		c.opts = append(c.opts, opts)
		t.Cleanup(func() {
			// Restart may have replaced it.
			c.Servers[i].Shutdown()
			c.Servers[i].WaitForShutdown()
		})
		// Generous: under the race detector on a loaded machine a node
		// with TLS routes has been seen to take over 30 s.
		if !s.ReadyForConnections(90 * time.Second) {
			t.Fatalf("node %s not ready", name)
		}
		urls = append(urls, s.ClientURL())
	}
	c.URLs = strings.Join(urls, ",")
	waitForMetaLeader(t, c.Servers)
	return c
}

// deployPort matches a listen address in deploy/nats's configurations.
var deployPort = regexp.MustCompile(`(0\.0\.0\.0|127\.0\.0\.1):(\d{4})\b`)

// deployPorts gives every port the configurations name a free one.
func deployPorts(t testing.TB, confs []string) map[string]string {
	ports := map[string]string{}
	for _, c := range confs {
		raw, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range deployPort.FindAllStringSubmatch(string(raw), -1) {
			ports[m[2]] = ""
		}
	}
	free := routePorts(t, len(ports))
	for p := range ports {
		ports[p], free = strconv.Itoa(free[0]), free[1:]
	}
	return ports
}

// rewriteDeployConf writes the node configuration at path into dir with the
// test's credentials, store and ports; it returns the node's name and the
// new file.
func rewriteDeployConf(t testing.TB, path, dir, credsDir string, ports map[string]string) (name, out string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name = strings.TrimSuffix(filepath.Base(path), ".conf")
	conf := strings.ReplaceAll(string(raw), "/etc/nats/herald/", credsDir+"/")
	conf = regexp.MustCompile(`store_dir: \S+`).ReplaceAllString(conf, "store_dir: "+filepath.Join(dir, name))
	conf = deployPort.ReplaceAllStringFunc(conf, func(s string) string {
		m := deployPort.FindStringSubmatch(s)
		return "127.0.0.1:" + ports[m[2]]
	})
	// include herald/auth.conf is relative to the configuration file.
	out = filepath.Join(dir, name+".conf")
	if err := os.WriteFile(out, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return name, out
}

// As connects to the cluster with the role's credentials over TLS.
func (c *SecureCluster) As(t testing.TB, r access.Role) *bus.Bus {
	t.Helper()
	return connectAs(t, c.URLs, c.CredsDir, c.TLS.CA, r)
}
