package incidents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/lease"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/services/incidents"
	"github.com/heraldhq/herald/streams"
)

func writer(t *testing.T, a *apptest.App) bool { return a.Metric(t, "herald_incident_leader") == 1 }

// incidentProcess runs the incident service alone, as its own process would,
// on the shared server.
func incidentProcess(t *testing.T, srv *heraldtest.SecureServer) *apptest.App {
	t.Helper()
	return apptest.StartApp(t, apptest.WithTargets("incident"), apptest.WithNATS(srv.ClientURL()),
		apptest.WithNATSCredsDir(srv.CredsDir), apptest.WithConfig(fastRules))
}

// flow posts OTP outcomes for three apps every 50 ms until stopped, each
// app failing and recovering in turns, so that incidents open, escalate
// and change while it runs.
type flow struct {
	stop chan struct{}
	done chan struct{}
}

func startFlow(t *testing.T, producer *apptest.App) *flow {
	f := &flow{stop: make(chan struct{}), done: make(chan struct{})}
	adapter := producer.As(t, access.ProviderAdapter)
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
			// otp_delivery_completed is the provider adapter's: published on
			// the bus as it would (HTTP refuses Herald-owned types).
			es := make([]*event.Event, len(ins))
			for i, in := range ins {
				es[i] = &event.Event{ID: event.NewID(), Type: event.Type(in.Type), Source: in.Source, Time: in.Time.UTC(),
					RequestID: in.RequestID, Raw: in.Data}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := adapter.Publish(ctx, es...)
			cancel()
			if err != nil {
				t.Errorf("publish: %v", err)
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

// quiet waits until the writer has folded the whole log and every incident
// is resolved (no deadline left, so no more ticks).
func quiet(t *testing.T, producer, w *apptest.App) {
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
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	producer := apptest.StartApp(t, apptest.WithTargets("dispatcher"), apptest.WithNATS(srv.ClientURL()),
		apptest.WithNATSCredsDir(srv.CredsDir), apptest.WithConfig(fastRules))
	first := incidentProcess(t, srv)
	second := incidentProcess(t, srv)
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
		if n := second.Metric(t, m); n != 0 {
			t.Errorf("the standby published: %s = %v", m, n)
		}
	}
	killed := time.Now()
	first.Connector.Abort()
	heraldtest.Eventually(t, 20*time.Second, "the standby to take over", func() bool { return writer(t, second) })
	took := time.Since(killed)
	t.Logf("the standby took over %s after the writer died", took)
	if took > 10*time.Second {
		t.Errorf("takeover took %s; the contract is 10 s", took)
	}
	if took < lease.DefaultTTL-2*lease.DefaultTTL/5 { // the last renewal is at most an interval old
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

	fresh, transitions := heraldtest.RebuildIncidents(t, producer.Bus)
	heraldtest.CheckPublishedTransitions(t, producer.Bus, transitions)
	_, live := liveIncidents(t, second)
	if got, want := canon(t, live), canon(t, fresh.Incidents()); got != want {
		t.Errorf("the new writer's incidents differ from a rebuild from zero:\nlive %s\nrebuilt %s", got, want)
	}
	if n := heraldtest.CheckOneTickPerDeadline(t, producer.Bus); n == 0 {
		t.Error("no clock tick: the rules' `for` and resolve hysteresis never waited on the wall clock")
	}
	if second.Metric(t, "herald_incident_clock_ticks_total") == 0 {
		t.Error("the new writer published no clock tick")
	}
}

// A standby answers the API like the writer, stays ready, and takes over at
// once when the writer stops cleanly (it releases the lease).
func TestAStandbyAnswersTheAPIAndTakesOverAtOnceWhenTheWriterStops(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	producer := apptest.StartApp(t, apptest.WithTargets("dispatcher"), apptest.WithNATS(srv.ClientURL()),
		apptest.WithNATSCredsDir(srv.CredsDir), apptest.WithConfig(fastRules))
	first := incidentProcess(t, srv)
	second := incidentProcess(t, srv)
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
	_, transitions := heraldtest.RebuildIncidents(t, producer.Bus)
	heraldtest.CheckPublishedTransitions(t, producer.Bus, transitions)
	heraldtest.CheckOneTickPerDeadline(t, producer.Bus)
	var m struct {
		Term uint64 `json:"term"`
	}
	kv, err := producer.As(t, access.Incident).JS.KeyValue(context.Background(), incidents.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "checkpoint")
	if err != nil || json.Unmarshal(e.Value(), &m) != nil || m.Term == 0 {
		t.Errorf("checkpoint manifest without the writer's term: %v %+v", err, m)
	}
}
