package heraldtest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/streams"
)

// RebuildIncidents folds EVENTS from zero into a fresh engine: the
// incidents, and the transitions in order, that one writer which never
// failed would have published.
func RebuildIncidents(t testing.TB, b *bus.Bus) (*incident.Engine, []*event.Event) {
	t.Helper()
	fresh := incident.NewEngine(incident.Options{Catalog: b.Catalog})
	var transitions []*event.Event
	err := incident.Read(context.Background(), b.JS, incident.ReadOptions{MaxSkew: time.Minute}, func(rec *incident.Record, _ incident.Position) error {
		fresh.Apply(rec)
		transitions = append(transitions, fresh.Drain()...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fresh, transitions
}

// CheckPublishedTransitions fails the test unless INCIDENTS holds exactly
// want (from RebuildIncidents): none missing, none twice, in order, with
// the same ids, subjects, times and data.
func CheckPublishedTransitions(t testing.TB, b *bus.Bus, want []*event.Event) {
	t.Helper()
	published := Events(t, b, streams.Incidents)
	seen := map[string]bool{}
	for _, p := range published {
		if seen[p.ID] {
			t.Errorf("INCIDENTS holds %s twice", p.ID)
		}
		seen[p.ID] = true
	}
	if len(published) != len(want) {
		var missing []string
		for _, r := range want {
			if !seen[r.ID] {
				missing = append(missing, r.ID)
			}
		}
		t.Fatalf("%d transitions published, a rebuild from zero gives %d; missing %v", len(published), len(want), missing)
	}
	for i, p := range published {
		r := want[i]
		pb, _ := json.Marshal(p.Data)
		rb, _ := json.Marshal(r.Data)
		if p.ID != r.ID || p.Subject != r.Subject || !p.Time.Equal(r.Time) || string(pb) != string(rb) {
			t.Errorf("transition %d: published %s %s %s %s, rebuilt %s %s %s %s", i, p.ID, p.Subject, p.Time, pb, r.ID, r.Subject, r.Time, rb)
		}
	}
}

// CheckOneTickPerDeadline fails the test if EVENTS holds two clock ticks
// for one deadline (two writers, or one resending); it returns the number
// of ticks.
func CheckOneTickPerDeadline(t testing.TB, b *bus.Bus) int {
	t.Helper()
	ticks := Events(t, b, streams.Events, "events.clock_tick")
	byDeadline := map[time.Time]int{}
	for _, e := range ticks {
		d, ok := event.As[event.ClockTick](e)
		if !ok {
			t.Fatalf("clock tick %s: %T", e.ID, e.Data)
		}
		if byDeadline[d.Deadline]++; byDeadline[d.Deadline] == 2 {
			t.Errorf("deadline %s ticked twice", d.Deadline)
		}
	}
	return len(ticks)
}
