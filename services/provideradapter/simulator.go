package provideradapter

import (
	"net/http"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/sms"
)

// The simulator's run-time mode and outbox are served by the process that
// runs the adapter, because the simulator lives there: its mode is this
// process's, not a fact of the log (it is a demo and test device, not
// configuration a rebuild should replay). A process without the adapter
// answers these routes 404; with several adapters, each has its own mode.

// simulatorAnswer is the body of GET and PUT /v1/simulator.
type simulatorAnswer struct {
	Simulator sms.SimMode `json:"simulator"`
}

func (a *adapter) simulatorRoutes() []api.Route {
	return []api.Route{
		{Pattern: "GET /v1/simulator", Access: api.Operator, Handler: http.HandlerFunc(a.getSimulator)},
		{Pattern: "PUT /v1/simulator", Access: api.Operator, Handler: http.HandlerFunc(a.putSimulator)},
		{Pattern: "GET /v1/simulator/outbox", Access: api.Operator, Handler: http.HandlerFunc(a.simulatorOutbox)},
	}
}

func (a *adapter) getSimulator(w http.ResponseWriter, _ *http.Request) {
	api.WriteJSON(w, http.StatusOK, simulatorAnswer{Simulator: a.sim.Mode()})
}

func (a *adapter) putSimulator(w http.ResponseWriter, r *http.Request) {
	var m sms.SimMode
	if err := api.DecodeJSON(r, 4<<10, &m); err != nil {
		api.WriteError(w, err)
		return
	}
	m, err := a.sim.SetMode(m, time.Now())
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_simulator_mode", "%v", err))
		return
	}
	a.breakers.reset(sms.Sim)
	a.log.Warn("simulator mode set", "event", "simulator_mode", "mode", m.Mode, "classification", string(m.Classification),
		"rate", m.Rate, "latency", m.Latency)
	api.WriteJSON(w, http.StatusOK, simulatorAnswer{Simulator: m})
}

// simulatorOutbox serves the recent messages the simulator answered for
// test numbers, and every one in demo mode: their codes reach no one. A
// real provider's message is never kept.
func (a *adapter) simulatorOutbox(w http.ResponseWriter, _ *http.Request) {
	api.WriteJSON(w, http.StatusOK, struct {
		Messages []sms.OutboxEntry `json:"messages"`
	}{a.sim.Outbox()})
}
