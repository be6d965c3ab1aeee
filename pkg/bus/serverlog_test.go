package bus_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/bus"
)

// TestTheServersBannersBecomeOneLineEach replays nats-server 2.15's start
// notices: the banner, the operators and JetStream's art and limits become
// one line each with their details as attributes; other lines pass as
// they are.
func TestTheServersBannersBecomeOneLineEach(t *testing.T) {
	var out bytes.Buffer
	l := bus.NewServerLogger(slog.New(slog.NewJSONHandler(&out, nil)))
	for _, line := range []string{
		"Starting nats-server", "  Version:  2.15.2", "  Git:      [not set]", "  Name:     n1", "  ID:       NCXUSY",
		"Trusted Operators", `  Operator: "herald"`, "  Expires : Never",
		"Starting JetStream",
		"    _ ___ _____ ___ _____ ___ ___   _   __  __",
		" _ | | __|_   _/ __|_   _| _ \\ __| /_\\ |  \\/  |",
		"| || | _|  | | \\__ \\ | | |   / _| / _ \\| |\\/| |",
		"", "         https://docs.nats.io/jetstream", "",
		"---------------- JETSTREAM ----------------", "  Max Memory:      1.00 GB", "  Store Directory: \"/tmp/x\"",
		"-------------------------------------------",
		"Listening for client connections on 127.0.0.1:4222",
		"Server is ready",
	} {
		l.Noticef("%s", line)
	}
	l.Warnf("a warning")
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, m)
	}
	want := []map[string]any{
		{"msg": "Starting nats-server", "version": "2.15.2", "git": "[not set]", "name": "n1", "id": "NCXUSY"},
		{"msg": "Trusted Operators", "operator": "herald", "expires": "Never"},
		{"msg": "Starting JetStream", "maxMemory": "1.00 GB", "storeDirectory": "/tmp/x"},
		{"msg": "Listening for client connections on 127.0.0.1:4222"},
		{"msg": "Server is ready"},
		{"msg": "a warning", "level": "WARN"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for i, w := range want {
		for k, v := range w {
			if got[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, got[i][k], v, got[i])
			}
		}
		if n := len(got[i]) - 3; n != len(w)-1 && w["level"] == nil { // time, level, msg
			t.Errorf("line %d has %d attributes, want %d: %v", i, n, len(w)-1, got[i])
		}
	}
}
