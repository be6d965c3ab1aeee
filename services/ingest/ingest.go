// Package ingest is the producers' entry point for events: it accepts their
// CloudEvents (POST /v1/events), validates them against the catalog
// (event.ParseInputs, Catalog.ToEvents), classifies integration calls by
// the configured rules (pkg/classify) and publishes them to the raw log
// with the producer role, and it lists the types producers may send
// (GET /v1/event-types). It runs in the dispatcher target.
package ingest

import (
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/classify"
)

// publishTimeout bounds the wait for JetStream's acks.
const publishTimeout = 5 * time.Second

// Module is the ingestion service. Its *bus.Bus carries the producer
// role's credentials: the server allows it to publish producer-owned types
// only, whatever reaches the handler.
var Module = fx.Module("ingest",
	fx.Provide(fx.Private, classify.Load),
	fx.Provide(fx.Annotate(routes, fx.ResultTags(`group:"routes,flatten"`))),
)

func routes(b *bus.Bus, cfg api.Config, cl *classify.Classifier) []api.Route {
	events := &eventsHandler{bus: b, classify: cl, maxBody: int64(cfg.MaxBodyBytes)}
	types := &typesHandler{cat: b.Catalog}
	// No b.Need(streams.Events): the producer role may not read stream
	// info; the dispatcher, in the same target, declares EVENTS for /readyz.
	return []api.Route{
		{Pattern: "POST /v1/events", Access: api.Producer, Handler: events},
		{Pattern: "GET /v1/event-types", Access: api.Public, Handler: http.HandlerFunc(types.list)},
		{Pattern: "GET /v1/event-types/{type}", Access: api.Public, Handler: http.HandlerFunc(types.schema)},
	}
}
