package incidents

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
)

// Routes are the service's HTTP endpoints.
func (s *Service) Routes() []api.Route {
	return []api.Route{
		{Pattern: "GET /v1/incidents", Access: api.Operator, Handler: http.HandlerFunc(s.list)},
		{Pattern: "GET /v1/incidents/{id}", Access: api.Operator, Handler: http.HandlerFunc(s.get)},
		{Pattern: "POST /v1/incidents/rebuild", Access: api.Operator, Handler: http.HandlerFunc(s.rebuild)},
		{Pattern: "GET /v1/incident-rules", Access: api.Operator, Handler: http.HandlerFunc(s.rules)},
	}
}

// Summary is the API's list view of an incident (GET /v1/incidents): the
// engine's record, incident.Incident, without its history (Transitions is
// their count) and with its group as a map. GET /v1/incidents/{id} serves
// the record itself.
type Summary struct {
	ID           string              `json:"id"`
	Rule         string              `json:"rule"`
	Kind         string              `json:"kind"`
	Group        map[string]string   `json:"group"`
	State        event.IncidentState `json:"state"`
	Severity     string              `json:"severity"`
	PeakSeverity string              `json:"peakSeverity"`
	OpenedAt     time.Time           `json:"openedAt"`
	ResolvedAt   *time.Time          `json:"resolvedAt,omitempty"`
	Summary      string              `json:"summary"`
	SuppressedBy string              `json:"suppressedBy,omitempty"`
	Transitions  int                 `json:"transitions"`
}

// ListPage is the answer of GET /v1/incidents.
type ListPage struct {
	Incidents []Summary `json:"incidents"`
	// Next is the cursor of the next page ("" on the last).
	Next string `json:"next,omitempty"`
	// Seq is the last EVENTS sequence the projection applied.
	Seq uint64 `json:"seq"`
}

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// Filter selects incidents; empty fields match everything.
type Filter struct {
	State                         event.IncidentState
	Severity, App, Provider, Rule string
}

// Match reports whether inc passes the filter.
func (f Filter) Match(inc *incident.Incident) bool {
	// A flapping incident is held open: state=open lists it too.
	state := f.State == "" || inc.State == f.State || f.State == event.StateOpen && inc.State == event.StateFlapping
	return state && (f.Severity == "" || inc.Severity == f.Severity) &&
		(f.App == "" || inc.Group.Get("app") == f.App) && (f.Provider == "" || inc.Group.Get("provider") == f.Provider) &&
		(f.Rule == "" || inc.Rule == f.Rule)
}

// ParseFilter reads and checks the query's filters.
func ParseFilter(q map[string][]string) (Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := Filter{State: get("state"), Severity: get("severity"), App: get("app"), Provider: get("provider"), Rule: get("rule")}
	switch f.State {
	case "", event.StateOpen, event.StateFlapping, event.StateResolved, event.StateSuppressed:
	default:
		return f, api.Errorf(http.StatusBadRequest, "invalid_query", "state %q is not open, flapping, resolved or suppressed", f.State)
	}
	switch f.Severity {
	case "", "P1", "P2", "P3":
	default:
		return f, api.Errorf(http.StatusBadRequest, "invalid_query", "severity %q is not P1, P2 or P3", f.Severity)
	}
	return f, nil
}

func summarize(inc *incident.Incident) Summary {
	return Summary{ID: inc.ID, Rule: inc.Rule, Kind: inc.Kind, Group: inc.Group.Map(), State: inc.State, Severity: inc.Severity,
		PeakSeverity: inc.PeakSeverity, OpenedAt: inc.OpenedAt, ResolvedAt: inc.ResolvedAt, Summary: inc.Summary,
		SuppressedBy: inc.SuppressedBy, Transitions: len(inc.Transitions)}
}

// afterCursor reports whether inc comes after the cursor (onset_id of the
// last incident of the previous page) in list order: newest onset first.
func afterCursor(inc *incident.Incident, c string) bool {
	ns, id, _ := strings.Cut(c, "_")
	t, _ := strconv.ParseInt(ns, 10, 64)
	o := inc.OpenedAt.UnixNano()
	return o < t || o == t && inc.ID > id
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := ParseFilter(q)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_query", "limit %q is not a number from 1 to %d", v, maxLimit))
			return
		}
		limit = n
	}
	after := q.Get("cursor")
	if after != "" {
		if ns, id, ok := strings.Cut(after, "_"); !ok || id == "" || func() bool { _, err := strconv.ParseInt(ns, 10, 64); return err != nil }() {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_query", "cursor %q is not one this API returned", after))
			return
		}
	}
	page := ListPage{Incidents: []Summary{}}
	s.View(func(e *incident.Engine) {
		page.Seq = e.Seq()
		for _, inc := range e.Incidents() {
			if after != "" && !afterCursor(inc, after) || !f.Match(inc) {
				continue
			}
			if len(page.Incidents) == limit {
				last := page.Incidents[len(page.Incidents)-1]
				page.Next = strconv.FormatInt(last.OpenedAt.UnixNano(), 10) + "_" + last.ID
				return
			}
			page.Incidents = append(page.Incidents, summarize(inc))
		}
	})
	api.WriteJSON(w, http.StatusOK, page)
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body []byte
	var found bool
	s.View(func(e *incident.Engine) {
		var inc *incident.Incident
		if inc, found = e.Incident(id); found {
			body, _ = json.Marshal(inc)
		}
	})
	if !found {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "not_found", "no incident %q", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *Service) rebuild(w http.ResponseWriter, r *http.Request) {
	if err := s.Rebuild(r.Context()); err != nil {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "unavailable", "rebuild: %v", err))
		return
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"rebuilding": true, "fromSeq": 1})
}

// RulesInfo is the answer of GET /v1/incident-rules.
type RulesInfo struct {
	// InForce: the rules the projection applies (the last recorded in the
	// log that it has read); Configured: the ones this process loaded.
	InForce     []incident.Rule `json:"inForce"`
	Fingerprint string          `json:"fingerprint"`
	Configured  string          `json:"configuredFingerprint"`
	Error       string          `json:"error,omitempty"`
}

func (s *Service) rules(w http.ResponseWriter, _ *http.Request) {
	var info RulesInfo
	s.View(func(e *incident.Engine) {
		if rs := e.Rules(); rs != nil {
			info.InForce, info.Fingerprint = rs.List(), rs.Fingerprint
		}
		if err := e.RulesError(); err != nil {
			info.Error = err.Error()
		}
		info.Configured = s.configured.Fingerprint
	})
	api.WriteJSON(w, http.StatusOK, info)
}
