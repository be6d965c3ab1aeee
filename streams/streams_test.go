package streams_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/streams"
)

func TestDefinitionsLoadWithOverrides(t *testing.T) {
	age := config.Duration(24 * time.Hour)
	defs, err := streams.Load(streams.Config{Replicas: 3, Overrides: map[string]streams.Override{"EVENTS": {MaxAge: &age}}})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]streams.Def{}
	for _, d := range defs {
		names[d.Name] = d
	}
	for _, n := range []string{streams.Events, streams.Incidents, streams.Notifications, streams.DLQ} {
		if _, ok := names[n]; !ok {
			t.Errorf("stream %s is not defined", n)
		}
	}
	ev := names[streams.Events]
	c, err := ev.StreamConfig(3)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxAge != 24*time.Hour || c.Replicas != 3 || !c.DenyDelete || c.Subjects[0] != "events.>" {
		t.Errorf("EVENTS config %+v", c)
	}
}

// The duplicates window can be made longer than the definition's 2m (a
// bridge down longer than that after a crash), never longer than maxAge.
func TestTheDuplicatesWindowIsOverriddenWithinMaxAge(t *testing.T) {
	day, hour, week := config.Duration(24*time.Hour), config.Duration(time.Hour), config.Duration(7*24*time.Hour)
	defs, err := streams.Load(streams.Config{Replicas: 1, Overrides: map[string]streams.Override{"EVENTS": {Duplicates: &day}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		if d.Name == streams.Events {
			if c, _ := d.StreamConfig(1); c.Duplicates != 24*time.Hour {
				t.Errorf("EVENTS duplicates %v, want 24h", c.Duplicates)
			}
		}
	}
	_, err = streams.Load(streams.Config{Replicas: 1, Overrides: map[string]streams.Override{"EVENTS": {MaxAge: &hour, Duplicates: &week}}})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "streams.overrides.EVENTS.duplicates") {
		t.Errorf("a window above maxAge: %v", err)
	}
}

func TestLoadRejectsUnknownOverridesAndBadDefinitions(t *testing.T) {
	if _, err := streams.Load(streams.Config{Replicas: 1, Overrides: map[string]streams.Override{"EVENT": {}}}); err == nil ||
		!strings.Contains(err.Error(), "streams.overrides.EVENT") {
		t.Errorf("unknown override: %v", err)
	}
	bad := fstest.MapFS{"x.yaml": {Data: []byte("kind: stream\nname: X\nsubjects: [x.>]\nretention: forever\n")}}
	if _, err := streams.Load(streams.DefaultConfig(), bad); err == nil || !strings.Contains(err.Error(), "x.yaml: X: retention") {
		t.Errorf("bad retention: %v", err)
	}
	typo := fstest.MapFS{"y.yaml": {Data: []byte("kind: stream\nname: Y\nsubject: [y.>]\n")}}
	if _, err := streams.Load(streams.DefaultConfig(), typo); err == nil || !strings.Contains(err.Error(), "subject") {
		t.Errorf("typo: %v", err)
	}
}
