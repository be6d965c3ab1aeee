// Package dispatcher is the producers' entry point: it accepts their typed
// events (POST /v1/events) and publishes them to the raw log, and it issues
// and verifies OTPs (POST /v1/otp/send, POST /v1/otp/verify, GET /platform/otp).
package dispatcher

import (
	"net/http"

	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/streams"
)

// Module is the dispatcher service.
var Module = fx.Module("dispatcher",
	fx.Provide(newOTPService),
	fx.Provide(fx.Annotate(routes, fx.ResultTags(`group:"routes,flatten"`))),
)

func routes(b *bus.Bus, cfg api.Config, o *otpService) []api.Route {
	b.Need(streams.Events)
	events := &eventsHandler{bus: b, maxBody: int64(cfg.MaxBodyBytes)}
	types := &typesHandler{cat: b.Catalog}
	return append([]api.Route{
		{Pattern: "POST /v1/events", Access: api.Producer, Handler: events},
		{Pattern: "GET /v1/event-types", Access: api.Public, Handler: http.HandlerFunc(types.list)},
		{Pattern: "GET /v1/event-types/{type}", Access: api.Public, Handler: http.HandlerFunc(types.schema)},
	}, o.routes()...)
}
