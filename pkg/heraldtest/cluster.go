package heraldtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

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
// directories and waits until the cluster has a meta leader and every node
// is current. They are shut down when the test ends.
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
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "heraldtest", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
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
	Eventually(t, 60*time.Second, "a JetStream meta leader and current nodes", func() bool {
		leaders := 0
		for _, s := range c.Servers {
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
	return c
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
	var ports []int
	for len(ports) < n {
		p := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
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
