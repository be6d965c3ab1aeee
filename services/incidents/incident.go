// Package incidents is Herald's incident service: it folds the event log
// through the alerting rules (pkg/incident) into incidents, publishes each
// transition once to INCIDENTS, checkpoints its state, records the passing
// of wall-clock time in the log, and serves the incidents over HTTP.
package incidents

import (
	"embed"
	"io/fs"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

//go:embed streams/*.yaml
var streamFiles embed.FS

// StreamDefs is the service's key-value bucket definition (its checkpoint).
func StreamDefs() fs.FS { return streams.Dir(streamFiles, "streams") }

// Module is the incident service.
var Module = fx.Module("incident",
	fx.Provide(
		newService,
		fx.Annotate(func(s *Service) []api.Route { return s.Routes() }, fx.ResultTags(`group:"routes,flatten"`)),
		fx.Annotate(func(s *Service) api.Check { return api.Check{Name: "incident", Func: s.Ready} }, fx.ResultTags(`group:"readiness"`)),
		fx.Annotate(func(s *Service) config.Reloader {
			return config.Reloader{Name: "incident", Reload: s.Reload}
		}, fx.ResultTags(`group:"reloaders"`)),
	),
	fx.Invoke(func(*Service) {}),
)

type serviceIn struct {
	fx.In
	LC      fx.Lifecycle
	File    *config.File
	Bus     *bus.Bus
	Catalog *event.Catalog
	Log     *slog.Logger
	Reg     *prometheus.Registry
}

func newService(in serviceIn) (*Service, error) {
	cfg, err := LoadConfig(in.File)
	if err != nil {
		return nil, err
	}
	s, err := New(cfg, in.Bus, in.Log, in.Reg)
	if err != nil {
		return nil, err
	}
	in.LC.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s, nil
}
