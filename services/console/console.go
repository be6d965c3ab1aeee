// Package console is the operator console served by herald serve at /: one
// page of plain HTML and a little JavaScript, embedded, with no build step
// and nothing fetched from the network (docs/console.md). The page reads
// only the HTTP API: what other services already serve (incidents, rules,
// the policy table, silences) it reads from them; what no API served yet it
// adds here, over the log itself — the live tail (server-sent events), one
// request's trace, the dead letters and the delivery-health projection.
// Nothing here keeps a state of its own.
package console

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
)

//go:embed web
var web embed.FS

// Module contributes the console's routes. It reads the log with the
// process's own read-only connection (operator-read), which every process
// has, so any process that serves HTTP serves the console.
var Module = fx.Module("console",
	fx.Provide(fx.Annotate(newConsole, fx.ParamTags(`name:"core"`), fx.ResultTags(`group:"routes,flatten"`))),
)

// Console serves the page and its feeds.
type Console struct {
	bus *bus.Bus
	log *slog.Logger
	// stream bounds one SSE connection: the HTTP server's write timeout
	// ends any answer, so a tail ends before it and the page resumes from
	// the last event id it received.
	stream time.Duration
}

func newConsole(b *bus.Bus, cfg api.Config, log *slog.Logger) []api.Route {
	c := &Console{bus: b, log: log.With("component", "console"), stream: streamLife(cfg.WriteTimeout.D())}
	return c.Routes()
}

// streamLife is how long one SSE answer lasts within the write timeout.
func streamLife(writeTimeout time.Duration) time.Duration {
	if writeTimeout <= 0 {
		return 5 * time.Minute
	}
	return min(5*time.Minute, writeTimeout*2/3)
}

// Routes are the page (public: it holds no data) and its feeds, which read
// the log and so need the operator key exactly like GET /v1/incidents (open
// only when no key is configured, which pkg/api allows on loopback only).
func (c *Console) Routes() []api.Route {
	assets, _ := fs.Sub(web, "web") // (a constant path in the embedded tree)
	files := http.FileServerFS(assets)
	return []api.Route{
		{Pattern: "GET /{$}", Access: api.Public, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			page(w)
			http.ServeFileFS(w, r, assets, "index.html")
		})},
		{Pattern: "GET /console/", Access: api.Public, Handler: http.StripPrefix("/console", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			page(w)
			files.ServeHTTP(w, r)
		}))},
		{Pattern: "GET /v1/events/stream", Access: api.Operator, Handler: http.HandlerFunc(c.tail)},
		{Pattern: "GET /v1/trace/{requestId}", Access: api.Operator, Handler: http.HandlerFunc(c.trace)},
		{Pattern: "GET /v1/dlq", Access: api.Operator, Handler: http.HandlerFunc(c.deadLetters)},
		{Pattern: "GET /v1/health/delivery", Access: api.Operator, Handler: http.HandlerFunc(c.health)},
	}
}

// page sets the headers of the console's own files: nothing but this origin
// may run in it or frame it.
func page(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}
