package incidents_test

import (
	"testing"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/services/incidents"
)

func TestStateFilterListsFlappingIncidentsAsOpen(t *testing.T) {
	for _, tc := range []struct {
		query, state string
		match        bool
	}{
		{"open", event.StateFlapping, true}, // held open
		{"open", event.StateOpen, true},
		{"flapping", event.StateFlapping, true},
		{"flapping", event.StateOpen, false},
		{"resolved", event.StateFlapping, false},
	} {
		f, err := incidents.ParseFilter(map[string][]string{"state": {tc.query}})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(&incident.Incident{State: tc.state}); got != tc.match {
			t.Errorf("state=%s on a %s incident: %v, want %v", tc.query, tc.state, got, tc.match)
		}
	}
	if _, err := incidents.ParseFilter(map[string][]string{"state": {"flappy"}}); err == nil {
		t.Error("state=flappy accepted")
	}
}
