// Package heraldtest is Herald's test support: an embedded JetStream per test,
// the whole platform on random ports, and helpers to read streams back. Later
// issues add the fakes of Fast2SMS, Twilio and Slack here.
package heraldtest

import (
	"context"
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// JetStreamOption adjusts the embedded server of JetStream.
type JetStreamOption func(*bus.ServerConfig)

// WithStoreDir reuses a store directory (to test restarts).
func WithStoreDir(dir string) JetStreamOption {
	return func(c *bus.ServerConfig) { c.StoreDir = dir }
}

// Server starts an embedded NATS server with JetStream on a temporary
// directory, listening on a random 127.0.0.1 port, open to any client
// unless an option gives it credentials (StartSecureServer does); it is shut down when the
// test ends.
func Server(t testing.TB, opts ...JetStreamOption) *server.Server {
	t.Helper()
	cfg := bus.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Name: "heraldtest"}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := bus.StartServer(cfg, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// SecureServer is an embedded server in operator mode, as herald serve
// runs it: only Herald's role credentials (in CredsDir) connect.
type SecureServer struct {
	*server.Server
	// DataDir/nats is CredsDir, as under herald serve's data directory: the
	// CLI finds its credentials with --data-dir DataDir.
	DataDir, CredsDir string
	Creds             *access.Credentials
}

// Credentials creates (or loads) Herald's NATS credentials in dir, as
// herald serve and herald nats init do.
func Credentials(t testing.TB, dir string) *access.Credentials {
	t.Helper()
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	table, err := access.Table(cat)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := access.Ensure(dir, table)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// StartSecureServer starts an embedded server that requires Herald's
// credentials, created in a temporary directory; it is shut down when the
// test ends. Apps reach it with WithNATS(s.ClientURL()) and
// WithNATSCredsDir(s.CredsDir).
func StartSecureServer(t testing.TB, opts ...JetStreamOption) *SecureServer {
	t.Helper()
	data := t.TempDir()
	creds := Credentials(t, bus.CredsDir(data))
	opts = append([]JetStreamOption{func(c *bus.ServerConfig) { c.Auth = creds }}, opts...)
	return &SecureServer{Server: Server(t, opts...), DataDir: data, CredsDir: creds.Dir, Creds: creds}
}

// OpenDataDir starts a server on a stopped platform's data directory, with
// its credentials, as herald serve would (JetStream keeps each account's
// streams apart: only the HERALD account sees them); it is shut down when
// the test ends.
func OpenDataDir(t testing.TB, dataDir string) *SecureServer {
	t.Helper()
	creds := Credentials(t, bus.CredsDir(dataDir))
	srv := Server(t, WithStoreDir(filepath.Join(dataDir, "jetstream")), func(c *bus.ServerConfig) { c.Auth = creds })
	return &SecureServer{Server: srv, DataDir: dataDir, CredsDir: creds.Dir, Creds: creds}
}

// ApplyStreams applies Herald's core streams and buckets, and the services'
// own definitions given (app.ServiceStreamDefs for the whole platform), as
// operator-admin, as herald serve does at start.
func (s *SecureServer) ApplyStreams(t testing.TB, services ...fs.FS) *SecureServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defs, err := streams.Load(streams.DefaultConfig(), services...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Apply(ctx, s.As(t, access.OperatorAdmin).JS, defs, 1); err != nil {
		t.Fatal(err)
	}
	return s
}

// As connects to s with the role's credentials; the connection is closed
// when the test ends.
func (s *SecureServer) As(t testing.TB, r access.Role) *bus.Bus {
	t.Helper()
	return ConnectAs(t, s.ClientURL(), s.CredsDir, r)
}

// ConnectAs connects to url with the role's credentials from credsDir; the connection is
// closed when the test ends.
func ConnectAs(t testing.TB, url, credsDir string, r access.Role) *bus.Bus {
	t.Helper()
	return connectAs(t, url, credsDir, "", r)
}

// connectAs connects with the role's credentials from credsDir (and the
// server's CA, for TLS); closed when the test ends.
func connectAs(t testing.TB, url, credsDir, ca string, r access.Role) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Connect(ctx, bus.ConnConfig{URL: url, Name: t.Name() + "-" + string(r), CAFile: ca,
		CredsFile: filepath.Join(credsDir, access.CredsFile(r)), InboxPrefix: access.InboxPrefix(r)}, cat, nil, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// JetStream starts an embedded server, applies Herald's core streams (streams/) and returns a
// connected bus; everything is closed when the test ends.
func JetStream(t testing.TB, opts ...JetStreamOption) *bus.Bus {
	t.Helper()
	return Connect(t, Server(t, opts...))
}

// Connect connects a bus to s over loopback TCP, as herald serve does, and
// applies Herald's streams. (In-process connections stalled pull consumers
// for up to 30s in about 5% of runs; see docs/operations.md.)
func Connect(t testing.TB, s *server.Server) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Connect(ctx, bus.ConnConfig{URL: s.ClientURL(), Name: t.Name()}, cat, nil, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	defs, err := streams.Load(streams.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Apply(ctx, b.JS, defs, 1); err != nil {
		t.Fatal(err)
	}
	return b
}

// Logger writes log lines to the test's log, shown only when it fails.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-min(len(p), 1)]))
	return len(p), nil
}

// Messages reads every message of a stream (optionally filtered by subject)
// from the first to the last present when it is called.
func Messages(t testing.TB, js jetstream.JetStream, stream string, filter ...string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []jetstream.Msg
	opts := bus.ScanOptions{Consumer: jetstream.OrderedConsumerConfig{FilterSubjects: filter}}
	if err := bus.Scan(ctx, js, stream, opts, func(m jetstream.Msg, _ bus.Position) error {
		out = append(out, m)
		return nil
	}); err != nil {
		t.Fatalf("read %s: %v (after %d messages)", stream, err, len(out))
	}
	return out
}

// Events reads a stream back as decoded events.
func Events(t testing.TB, b *bus.Bus, stream string, filter ...string) []*event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*event.Event
	err := b.ReadAll(ctx, stream, filter, func(e *event.Event, err error) error {
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Eventually polls cond until it is true or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
