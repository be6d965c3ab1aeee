package main

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/streams"
)

// Issue 9: on the 3-node cluster of deploy/nats, herald tail --all and
// herald replay read a stream of 100,000 events to its end, also while a
// server is lost in the middle of the read.
func TestClientCommandsReadTheWholeLogOfAClusterWhileAServerIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster and writes 100,000 events")
	}
	c := heraldtest.StartDeployCluster(t, "../../deploy/nats")
	defs, err := streams.Load(streams.Config{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := streams.Apply(ctx, c.As(t, access.OperatorAdmin).JS, defs, 3); err != nil {
		t.Fatal(err)
	}
	producer := c.As(t, access.Producer)
	const n = 100_000
	batch := make([]*event.Event, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, event.New("billing", event.IntegrationCallCompleted{Integration: "stripe", Operation: "charges.create",
			StatusCode: 200, LatencyMs: 80}))
		if len(batch) == cap(batch) {
			if _, err := producer.Publish(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	client := []string{"--nats", c.URLs, "--creds", filepath.Join(c.CredsDir, access.CredsFile(access.OperatorRead)), "--ca", c.TLS.CA}

	// herald tail --all: every line, in order, while the EVENTS leader is lost
	// a third of the way through.
	leader := func() string {
		s, err := c.As(t, access.OperatorRead).JS.Stream(ctx, streams.Events)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Cluster.Leader
	}
	victim := leader()
	cmd := exec.CommandContext(ctx, heraldBin, append([]string{"tail", "--all", "--follow=false", "--json"}, client...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		if lines == n/3 {
			c.Kill(victim)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("herald tail --all: %v after %d lines\n%s", err, lines, stderr.String())
	}
	if lines != n {
		t.Fatalf("herald tail --all printed %d lines, want %d\n%s", lines, n, stderr.String())
	}

	// herald replay folds the same log (now with two servers of three).
	replay := exec.CommandContext(ctx, heraldBin, append([]string{"replay"}, client...)...)
	b, err := replay.CombinedOutput()
	if err != nil {
		t.Fatalf("herald replay: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "replayed 100000 events") {
		t.Errorf("herald replay did not fold the 100,000 events:\n%s", b[max(0, len(b)-600):])
	}
}
