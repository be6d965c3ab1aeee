package ingest

import (
	"net/http"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
)

// typesHandler serves GET /v1/event-types and GET /v1/event-types/{type}.
type typesHandler struct{ cat *event.Catalog }

type typeInfo struct {
	Type        string `json:"type"`
	Version     int    `json:"version"`
	Log         string `json:"log"`
	Schema      string `json:"schema"`
	Description string `json:"description"`
}

func (h *typesHandler) list(w http.ResponseWriter, _ *http.Request) {
	var out []typeInfo
	for _, d := range h.cat.Defs() {
		out = append(out, typeInfo{string(d.Type), d.Version, string(d.Log), d.SchemaURI, d.Description})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"types": out})
}

func (h *typesHandler) schema(w http.ResponseWriter, r *http.Request) {
	d, err := h.cat.Def(event.Type(r.PathValue("type")))
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "unknown_event_type", "%q is not an event type", r.PathValue("type")))
		return
	}
	w.Header().Set("Content-Type", "application/schema+json")
	_, _ = w.Write(d.Schema())
}
