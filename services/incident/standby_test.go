package incident_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/pkg/lease"
	svc "github.com/heraldhq/herald/services/incident"
	"github.com/heraldhq/herald/streams"
)

// metric sums the samples of a metric in a process's /metrics.
func metric(t *testing.T, a *heraldtest.App, name string) float64 {
	t.Helper()
	r := a.Do(t, "GET", "/metrics", nil)
	sum := 0.0
	for _, line := range strings.Split(string(r.Body), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func writer(t *testing.T, a *heraldtest.App) bool { return metric(t, a, "herald_incident_leader") == 1 }

// incidentProcess runs the incident service alone, as its own process would,
// on the shared server.
func incidentProcess(t *testing.T, url string) *heraldtest.App {
	t.Helper()
	return heraldtest.StartApp(t, heraldtest.WithTargets("incident"), heraldtest.WithNATS(url), heraldtest.WithConfig(fastRules))
}

// flow posts OTP outcomes for three apps every 50 ms until stopped, each
// app failing and recovering in turns, so that incidents open, escalate
// and change while it runs.
type flow struct {
	stop chan struct{}
	done chan struct{}
}

func startFlow(t *testing.T, producer *heraldtest.App) *flow {
	f := &flow{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for i := 0; ; i++ {
			select {
			case <-f.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var ins []input
			for k := range 3 {
				st := "delivered"
				if (i/30+k)%3 == 0 {
					st = "failed"
				}
				in := send(st, time.Now().UTC(), i*10+k)
				in.Data = json.RawMessage(strings.Replace(string(in.Data), `"shop"`, fmt.Sprintf(`"app%d"`, k), 1))
				ins = append(ins, in)
			}
			if r := producer.Do(t, "POST", "/v1/events", ins); r.Status >= 300 {
				t.Errorf("POST /v1/events: %d %s", r.Status, r.Body)
				return
			}
		}
	}()
	return f
}

func (f *flow) end() {
	close(f.stop)
	<-f.done
}

// rebuild folds EVENTS from zero into a fresh engine: the incidents and the
// transitions a single writer that never failed would have published.
func rebuild(t *testing.T, a *heraldtest.App) (*incident.Engine, []*event.Event) {
	t.Helper()
	fresh := incident.NewEngine(incident.Options{Catalog: a.Bus.Catalog})
	var transitions []*event.Event
	err := incident.Read(context.Background(), a.Bus.JS, incident.ReadOptions{MaxSkew: time.Minute}, func(rec *incident.Record, _ incident.Position) error {
		fresh.Apply(rec)
		transitions = append(transitions, fresh.Drain()...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fresh, transitions
}

// samePublished checks that INCIDENTS holds exactly the rebuilt
// transitions: none missing, none twice, in the same order.
func samePublished(t *testing.T, a *heraldtest.App, rebuilt []*event.Event) {
	t.Helper()
	published := heraldtest.Events(t, a.Bus, streams.Incidents)
	seen := map[string]bool{}
	for _, p := range published {
		if seen[p.ID] {
			t.Errorf("INCIDENTS holds %s twice", p.ID)
		}
		seen[p.ID] = true
	}
	if len(published) != len(rebuilt) {
		var want []string
		for _, r := range rebuilt {
			if !seen[r.ID] {
				want = append(want, r.ID)
			}
		}
		t.Fatalf("%d transitions published, a rebuild from zero gives %d; missing %v", len(published), len(rebuilt), want)
	}
	for i, p := range published {
		r := rebuilt[i]
		pb, _ := json.Marshal(p.Data)
		rb, _ := json.Marshal(r.Data)
		if p.ID != r.ID || p.Subject != r.Subject || !p.Time.Equal(r.Time) || string(pb) != string(rb) {
			t.Errorf("transition %d: published %s %s %s %s, rebuilt %s %s %s %s", i, p.ID, p.Subject, p.Time, pb, r.ID, r.Subject, r.Time, rb)
		}
	}
}

// oneTickPerDeadline checks that no deadline was ticked twice (by two
// writers, or one resending).
func oneTickPerDeadline(t *testing.T, a *heraldtest.App) int {
	t.Helper()
	ticks := heraldtest.Events(t, a.Bus, streams.Events, "events.clock_tick")
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

// quiet waits until the writer has folded the whole log and every incident
// is resolved (no deadline left, so no more ticks).
func quiet(t *testing.T, producer, w *heraldtest.App) {
	t.Helper()
	heraldtest.Eventually(t, 30*time.Second, "every incident resolved and the log folded", func() bool {
		return len(list(t, w, "?state=open").Incidents) == 0 && list(t, w, "").Seq == lastSeq(t, producer)
	})
}

// Design §7: the incident projection has one active writer and a hot
// standby. The writer dies (its connection drops: no release, no last
// publish) while events flow; the standby takes over within 10 s, and
// INCIDENTS ends up exactly as a single writer would have left it.
func TestAStandbyTakesOverWithinTenSecondsWhenTheWriterDies(t *testing.T) {
	srv := heraldtest.Server(t)
	producer := heraldtest.StartApp(t, heraldtest.WithTargets("dispatcher"), heraldtest.WithNATS(srv.ClientURL()), heraldtest.WithConfig(fastRules))
	first := incidentProcess(t, srv.ClientURL())
	second := incidentProcess(t, srv.ClientURL())
	if !writer(t, first) || writer(t, second) {
		t.Fatalf("writer gauges %v and %v, want the first process to write", writer(t, first), writer(t, second))
	}
	if r := second.Do(t, "GET", "/readyz", nil); r.Status != http.StatusOK {
		t.Errorf("a standby is not ready: %d %s", r.Status, r.Body)
	}

	f := startFlow(t, producer)
	heraldtest.Eventually(t, 20*time.Second, "transitions published by the writer", func() bool {
		return len(heraldtest.Events(t, producer.Bus, streams.Incidents)) >= 4
	})
	for _, m := range []string{"herald_incident_transitions_total", "herald_incident_clock_ticks_total"} {
		if n := metric(t, second, m); n != 0 {
			t.Errorf("the standby published: %s = %v", m, n)
		}
	}
	killed := time.Now()
	first.Bus.NC.Close()
	heraldtest.Eventually(t, 20*time.Second, "the standby to take over", func() bool { return writer(t, second) })
	took := time.Since(killed)
	t.Logf("the standby took over %s after the writer died", took)
	if took > 10*time.Second {
		t.Errorf("takeover took %s; the contract is 10 s", took)
	}
	if took < lease.DefaultTTL-lease.DefaultTTL/5 {
		t.Errorf("takeover after %s: before the dead writer's lease can have expired", took)
	}
	// The new writer carries on while events flow.
	before := len(heraldtest.Events(t, producer.Bus, streams.Incidents))
	heraldtest.Eventually(t, 20*time.Second, "a transition published by the new writer", func() bool {
		return len(heraldtest.Events(t, producer.Bus, streams.Incidents)) > before
	})
	f.end()
	quiet(t, producer, second)
	_ = first.StopErr() // its connection is gone: nothing to flush

	fresh, transitions := rebuild(t, producer)
	samePublished(t, producer, transitions)
	_, live := liveIncidents(t, second)
	if got, want := canon(t, live), canon(t, fresh.Incidents()); got != want {
		t.Errorf("the new writer's incidents differ from a rebuild from zero:\nlive %s\nrebuilt %s", got, want)
	}
	if n := oneTickPerDeadline(t, producer); n == 0 {
		t.Error("no clock tick: the rules' `for` and resolve hysteresis never waited on the wall clock")
	}
	if metric(t, second, "herald_incident_clock_ticks_total") == 0 {
		t.Error("the new writer published no clock tick")
	}
}

// A standby answers the API like the writer, stays ready, and takes over at
// once when the writer stops cleanly (it releases the lease).
func TestAStandbyAnswersTheAPIAndTakesOverAtOnceWhenTheWriterStops(t *testing.T) {
	srv := heraldtest.Server(t)
	producer := heraldtest.StartApp(t, heraldtest.WithTargets("dispatcher"), heraldtest.WithNATS(srv.ClientURL()), heraldtest.WithConfig(fastRules))
	first := incidentProcess(t, srv.ClientURL())
	second := incidentProcess(t, srv.ClientURL())
	now := time.Now().UTC()
	var ins []input
	for i := range 6 {
		ins = append(ins, send("failed", now.Add(time.Duration(i)*time.Millisecond), i))
	}
	post(t, producer, ins...)
	heraldtest.Eventually(t, 10*time.Second, "both processes caught up with an open incident", func() bool {
		last := lastSeq(t, producer)
		return list(t, first, "").Seq == last && list(t, second, "").Seq == last && len(list(t, second, "?state=open").Incidents) == 1
	})
	_, fromWriter := liveIncidents(t, first)
	_, fromStandby := liveIncidents(t, second)
	if canon(t, fromStandby) != canon(t, fromWriter) {
		t.Errorf("the standby answers otherwise than the writer:\n%s\nwant %s", canon(t, fromStandby), canon(t, fromWriter))
	}
	if r := second.Do(t, "GET", "/readyz", nil); r.Status != http.StatusOK {
		t.Errorf("standby /readyz: %d %s", r.Status, r.Body)
	}
	if writer(t, second) {
		t.Fatal("both processes write")
	}

	stopped := time.Now()
	first.Stop(t)
	heraldtest.Eventually(t, 10*time.Second, "the standby to take over", func() bool { return writer(t, second) })
	if took := time.Since(stopped); took >= lease.DefaultTTL-lease.DefaultTTL/5 {
		t.Errorf("takeover %s after a clean stop: the lease was not released", took)
	}
	// The new writer resumes where the old one stopped: the incident
	// resolves once its failures leave the window, published once.
	post(t, producer, send("delivered", time.Now().UTC(), 100))
	quiet(t, producer, second)
	_, transitions := rebuild(t, producer)
	samePublished(t, producer, transitions)
	oneTickPerDeadline(t, producer)
	var m struct {
		Term uint64 `json:"term"`
	}
	kv, err := producer.Bus.JS.KeyValue(context.Background(), svc.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "checkpoint")
	if err != nil || json.Unmarshal(e.Value(), &m) != nil || m.Term == 0 {
		t.Errorf("checkpoint manifest without the writer's term: %v %+v", err, m)
	}
}
