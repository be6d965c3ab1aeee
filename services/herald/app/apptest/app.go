// Package apptest starts the whole platform in a test's process: the
// services as services/herald/app wires them, on an embedded JetStream
// server, HTTP and NATS on random 127.0.0.1 ports. The parts that need no
// platform (servers, clusters, fakes) are in pkg/heraldtest.
package apptest

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/lease"
	"github.com/heraldhq/herald/services/herald/app"
)

// App is the whole platform running in the test's process, on random ports.
type App struct {
	*app.App
	URL     string // HTTP base URL
	NATSURL string // embedded server's client URL
	DataDir string
	opts    app.Options
	stopped bool
	roles   map[access.Role]*bus.Bus
}

// AppOption adjusts the application a test starts.
type AppOption func(*app.Options)

// WithConfig sets herald.yaml's content.
func WithConfig(yaml string) AppOption { return func(o *app.Options) { o.ConfigYAML = yaml } }

// WithConfigFile reads herald.yaml from a file (so that a test can change it
// and reload).
func WithConfigFile(path string) AppOption { return func(o *app.Options) { o.ConfigFile = path } }

// WithTargets runs only these services.
func WithTargets(targets ...string) AppOption { return func(o *app.Options) { o.Targets = targets } }

// WithDataDir reuses a data directory (to test restarts).
func WithDataDir(dir string) AppOption { return func(o *app.Options) { o.DataDir = dir } }

// WithNATS connects to an external server instead of embedding one.
func WithNATS(url string) AppOption { return func(o *app.Options) { o.NATSURL = url } }

// WithNATSCredsDir takes the roles' credentials from dir (with WithNATS).
func WithNATSCredsDir(dir string) AppOption { return func(o *app.Options) { o.NATSCredsDir = dir } }

// WithLogOutput sends the platform's log lines, as herald serve writes them
// (JSON, sanitised), to w instead of the test log.
func WithLogOutput(w io.Writer) AppOption {
	return func(o *app.Options) { o.Logger, o.LogOutput = nil, w }
}

// WithStdout captures the console sink's output.
func WithStdout(w io.Writer) AppOption { return func(o *app.Options) { o.Stdout = w } }

// StartApp starts the platform: an embedded JetStream server on a temporary
// data directory and every service (or those chosen), HTTP and NATS on random
// 127.0.0.1 ports. It is stopped when the test ends.
func StartApp(t testing.TB, opts ...AppOption) *App {
	t.Helper()
	o := app.Options{
		DataDir:    t.TempDir(),
		HTTPAddr:   "127.0.0.1:0",
		NATSListen: "127.0.0.1:0",
		Logger:     heraldtest.Logger(t),
	}
	for _, opt := range opts {
		opt(&o)
	}
	a := &App{opts: o, DataDir: o.DataDir}
	a.start(t)
	t.Cleanup(func() { a.Stop(t) })
	return a
}

func (a *App) start(t testing.TB) {
	t.Helper()
	built, err := app.New(a.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := built.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a.App, a.stopped = built, false
	a.URL = built.HTTP.URL()
	a.NATSURL = built.Bus.ClientURL()
}

// Stop stops the platform cleanly (as SIGTERM does); an error fails the test.
func (a *App) Stop(t testing.TB) {
	t.Helper()
	if err := a.StopErr(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// StopErr stops the platform and returns what went wrong, for tests where
// something is expected to (the event log is gone, say).
func (a *App) StopErr() error {
	if a.stopped {
		return nil
	}
	a.stopped = true
	a.closeRoles()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return a.App.Stop(ctx)
}

// Restart stops the platform and starts it again on the same data directory.
func (a *App) Restart(t testing.TB) {
	t.Helper()
	a.Stop(t)
	a.start(t)
}

// Do sends a request to the platform; body may be a string, []byte or any
// value to encode as JSON.
func (a *App) Do(t testing.TB, method, path string, body any, header ...string) *heraldtest.Response {
	t.Helper()
	return heraldtest.Do(t, method, a.URL+path, body, header...)
}

// Metric sums the samples of a metric (every label set) in the platform's
// GET /metrics; 0 if it has none.
func (a *App) Metric(t testing.TB, name string) float64 {
	t.Helper()
	return heraldtest.Metric(t, a.URL, name)
}

// As connects to the platform's server with the role's credentials (as the
// role's service does); the connection is closed when the platform stops.
// Tests publish an event with the role that owns it: the server refuses it
// from any other.
func (a *App) As(t testing.TB, r access.Role) *bus.Bus {
	t.Helper()
	if b, ok := a.roles[r]; ok {
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := a.Connector.Connect(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if a.roles == nil {
		a.roles = map[access.Role]*bus.Bus{}
	}
	a.roles[r] = b
	return b
}

func (a *App) closeRoles() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for r, b := range a.roles {
		_ = b.Close(ctx)
		delete(a.roles, r)
	}
}

// Publish publishes each event with the connection of the role that owns
// its type (event.Def.Owner).
func (a *App) Publish(t testing.TB, events ...*event.Event) []bus.Ack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var acks []bus.Ack
	for _, e := range events {
		if e.Data != nil {
			e.Type = e.Data.EventType()
		}
		def, err := a.Bus.Catalog.Def(e.Type)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := a.As(t, access.Role(def.Owner)).Publish(ctx, e)
		if err != nil {
			t.Fatalf("publish %s as %s: %v", e.Type, def.Owner, err)
		}
		acks = append(acks, ack...)
	}
	return acks
}

// PublishInputs publishes events written as POST /v1/events takes them (a
// value encoded to JSON), each with the role that owns its type: for tests
// that feed Herald-owned types, which POST /v1/events does not accept.
func (a *App) PublishInputs(t testing.TB, body any) []bus.Ack {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := event.ParseInputs(raw)
	if err != nil {
		t.Fatal(err)
	}
	events, err := a.Bus.Catalog.ToEvents(ins)
	if err != nil {
		t.Fatal(err)
	}
	return a.Publish(t, events...)
}

// StreamMessages reads every message of any stream, a log or a key-value
// bucket's, with a role allowed to: operator-read for the logs, the owning
// service for its bucket (filtered to the bucket's keys).
func (a *App) StreamMessages(t testing.TB, stream string) []jetstream.Msg {
	t.Helper()
	if bucket, ok := strings.CutPrefix(stream, "KV_"); ok && bucket != lease.Bucket {
		r, ok := bucketOwner(bucket)
		if !ok {
			t.Fatalf("no role owns bucket %s", bucket)
		}
		return heraldtest.Messages(t, a.As(t, r).JS, stream, "$KV."+bucket+".>")
	}
	return heraldtest.Messages(t, a.Bus.JS, stream)
}

// bucketOwner is the role whose grant has the key-value bucket.
func bucketOwner(bucket string) (access.Role, bool) {
	grants := access.Grants()
	for _, r := range access.Roles() {
		if slices.Contains(grants[r].Buckets, bucket) {
			return r, true
		}
	}
	return "", false
}

// StoredText is everything the server stores, stream by stream (key-value
// buckets and the DLQ included), each read with a role allowed to: each
// message's subject, headers and data, for tests that look for what must
// never be stored.
func (a *App) StoredText(t testing.TB) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]string{}
	names := a.Bus.JS.StreamNames(ctx)
	for name := range names.Name() {
		s, err := a.Bus.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if s.CachedInfo().State.Msgs > 0 {
			for _, m := range a.StreamMessages(t, name) {
				b.WriteString(m.Subject())
				for k, v := range m.Headers() {
					b.WriteString(" " + k + ": " + strings.Join(v, ","))
				}
				b.WriteByte('\n')
				b.Write(m.Data())
				b.WriteByte('\n')
			}
		}
		out[name] = b.String()
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
