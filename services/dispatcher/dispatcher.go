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

// routesIn are the routes' dependencies. Producers' events are published
// with the producer role's connection (name:"producer"), which the server
// allows to publish producer-owned types only, whatever reaches the handler.
type routesIn struct {
	fx.In
	Producer *bus.Bus `name:"producer"`
	Config   api.Config
	OTP      *otpService
}

func routes(in routesIn) []api.Route {
	events := &eventsHandler{bus: in.Producer, maxBody: int64(in.Config.MaxBodyBytes)}
	types := &typesHandler{cat: in.Producer.Catalog}
	o := in.OTP
	in.Producer.Need(streams.Events)
	return append([]api.Route{
		{Pattern: "POST /v1/events", Access: api.Producer, Handler: events},
		{Pattern: "GET /v1/event-types", Access: api.Public, Handler: http.HandlerFunc(types.list)},
		{Pattern: "GET /v1/event-types/{type}", Access: api.Public, Handler: http.HandlerFunc(types.schema)},
	}, o.routes()...)
}
