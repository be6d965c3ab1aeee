package heraldtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitmqServer is Debian's start script itself; /usr/sbin/rabbitmq-server
// would switch to the rabbitmq user and to /var/lib/rabbitmq.
const (
	rabbitmqServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	rabbitmqctl    = "/usr/lib/rabbitmq/bin/rabbitmqctl"
)

// RabbitMQ is a RabbitMQ node a test started, Debian's rabbitmq-server run
// as the test's own process: its own directory (data, logs, config, Erlang
// cookie), node name and ports; no plugins. Only epmd (port 4369), which
// the first node starts, is shared by every node on the machine.
type RabbitMQ struct {
	// URL is amqp://user:pass@127.0.0.1:port/vhost (the default vhost, /,
	// unless VHost made it), for a user with a random password that may
	// configure, write and read everything.
	URL      string
	Node     string // its Erlang node name, herald-<random>@localhost
	Dir      string // its data, logs and configuration
	LogFiles []string

	user, base string   // base is URL without the vhost
	env        []string // the node's environment, for rabbitmqctl
	stop       func()
}

// StartRabbitMQ starts a RabbitMQ node for the test, returns once an AMQP
// connection opens, and stops it (node and children; epmd stays) when the
// test ends. It fails the test when rabbitmq-server is not installed.
//
// A start measured 8 to 12 s alone on this 2-core machine, 15 s for two at
// once (Erlang's boot, CPU-bound); a vhost on a running node (VHost) takes
// about 2 s. A package with several RabbitMQ tests shares one node through
// SharedRabbitMQ, a vhost per test; StartRabbitMQ is for a test that needs
// a node of its own (to stop it, or to see its log).
func StartRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	mustBinary(t, rabbitmqServer, "rabbitmq-server")
	start := time.Now()
	r, err := launchRabbitMQ(t.TempDir())
	if r != nil {
		t.Cleanup(r.stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RabbitMQ %s ready on 127.0.0.1 in %v", r.Node, time.Since(start).Round(time.Millisecond))
	return r
}

// launchRabbitMQ starts a node in dir and waits until it takes AMQP
// connections. Unless it returns no RabbitMQ, the caller must call stop.
func launchRabbitMQ(dir string) (*RabbitMQ, error) {
	ports := freePorts(2)
	user, pass := "herald", randomToken()
	r := &RabbitMQ{
		Node: "herald-" + randomToken()[:12] + "@localhost",
		Dir:  dir,
		user: user,
		base: fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", user, pass, ports[0]),
	}
	r.URL = r.base
	conf := filepath.Join(dir, "rabbitmq.conf")
	plugins := filepath.Join(dir, "enabled_plugins")
	logDir := filepath.Join(dir, "log")
	stdout := filepath.Join(dir, "stdout.log")
	r.LogFiles = []string{stdout, filepath.Join(logDir, r.Node+".log")}
	r.env = append(environWithout("RABBITMQ_", "HOME="),
		"HOME="+dir, // its ~/.erlang.cookie is the node's own
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+logDir,
		"RABBITMQ_CONFIG_FILE="+conf,
		"RABBITMQ_ENABLED_PLUGINS_FILE="+plugins,
		"RABBITMQ_NODENAME="+r.Node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", ports[0]),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", ports[1]),
	)
	config := fmt.Sprintf("default_user = %s\ndefault_pass = %s\nloopback_users = none\ndisk_free_limit.absolute = 1MB\n", user, pass)
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(plugins, []byte("[].\n"), 0o600); err != nil {
		return nil, err
	}
	out, err := os.Create(stdout)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(rabbitmqServer)
	cmd.Dir, cmd.Env = dir, r.env
	cmd.Stdout, cmd.Stderr = out, out
	d, err := startDaemon(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", rabbitmqServer, err)
	}
	// SIGTERM is the node's orderly shutdown (about a second).
	r.stop = func() { d.stop(syscall.SIGTERM, 15*time.Second) }
	return r, r.waitReady(d)
}

// waitReady dials until a connection opens, the node exits, or a minute
// passes; connection refused is immediate until the listener is bound.
func (r *RabbitMQ) waitReady(d *daemon) error {
	deadline := time.After(60 * time.Second)
	for {
		conn, err := amqp.DialConfig(r.URL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err == nil {
			return conn.Close()
		}
		select {
		case <-d.exited:
			return fmt.Errorf("rabbitmq-server exited before accepting connections (%v):\n%s", d.err, logTail(r.LogFiles...))
		case <-deadline:
			return fmt.Errorf("rabbitmq-server not accepting connections after 60s (last: %w):\n%s", err, logTail(r.LogFiles...))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// VHost creates a vhost of its own for the test on r's node (with
// rabbitmqctl) and returns r as seen from it: URL names the vhost, the
// user may do everything there. The vhost stays until the node stops.
func (r *RabbitMQ) VHost(t testing.TB) *RabbitMQ {
	t.Helper()
	name := "t-" + randomToken()[:12]
	for _, args := range [][]string{
		{"add_vhost", name},
		{"set_permissions", "-p", name, r.user, ".*", ".*", ".*"},
	} {
		cmd := exec.Command(rabbitmqctl, append([]string{"-n", r.Node, "-q"}, args...)...)
		cmd.Dir, cmd.Env = r.Dir, r.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	v := *r
	v.URL = r.base + name
	return &v
}

// SharedRabbitMQ is one RabbitMQ node for a test package's tests, started
// by the first test that asks for it and stopped by the package's TestMain:
//
//	var rabbit heraldtest.SharedRabbitMQ
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		rabbit.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) { r := rabbit.Node(t).VHost(t); ... }
//
// Its zero value is ready to use.
type SharedRabbitMQ struct {
	mu  sync.Mutex
	r   *RabbitMQ
	err error
}

// Node returns the shared node, starting it on the first call; a start that
// failed fails every test that asks.
func (s *SharedRabbitMQ) Node(t testing.TB) *RabbitMQ {
	t.Helper()
	mustBinary(t, rabbitmqServer, "rabbitmq-server")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil && s.err == nil {
		start := time.Now()
		dir, err := os.MkdirTemp("", "heraldtest-rabbitmq-")
		if err == nil {
			s.r, err = launchRabbitMQ(dir)
		}
		if s.err = err; err == nil {
			t.Logf("shared RabbitMQ %s ready in %v", s.r.Node, time.Since(start).Round(time.Millisecond))
		}
	}
	if s.err != nil {
		t.Fatalf("shared RabbitMQ: %v", s.err)
	}
	return s.r
}

// Stop stops the shared node, if it was started, and removes its directory.
func (s *SharedRabbitMQ) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r != nil {
		s.r.stop()
		os.RemoveAll(s.r.Dir)
	}
}

// Channel opens a connection and a channel on it, both closed when the
// test ends.
func (r *RabbitMQ) Channel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(r.URL)
	if err != nil {
		t.Fatalf("dial RabbitMQ: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// environWithout is the test's environment less the variables with one of
// the prefixes, which would otherwise reach the server.
func environWithout(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
