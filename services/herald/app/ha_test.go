package app_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// startCluster starts the 3-node cluster of deploy/nats as shipped
// (credentials, TLS), with its node restarts.
func startCluster(t *testing.T) *heraldtest.SecureCluster {
	return heraldtest.StartDeployCluster(t, "../../../deploy/nats")
}

// onCluster runs the platform's targets against the cluster.
func onCluster(c *heraldtest.SecureCluster, cfg string, opts ...apptest.AppOption) []apptest.AppOption {
	return append([]apptest.AppOption{apptest.WithNATS(c.URLs), apptest.WithNATSCredsDir(c.CredsDir),
		apptest.WithConfig(fmt.Sprintf("nats: {caFile: %q}\n", c.TLS.CA) + cfg)}, opts...)
}

func clusterConfig(f2s *heraldtest.Fast2SMS) string {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	return fmt.Sprintf(`
streams: {replicas: 3}
otp:
  sealKey: %q
  hashKey: %q
  deliveryTimeout: 8s
  syncTimeout: 10s
  defaults: {resendCooldown: 0s, perApp: {rate: 0}}
providers:
  fast2sms: {baseURL: %q, timeout: 2s, retries: 2, backoff: 50ms}
%s`, key, key, f2s.URL, heraldtest.BankApp("dlt_with_fallback"))
}

// sendResult is one synchronous send's answer.
type sendResult struct {
	phone, requestID, status string
	code                     int
	body                     string
	took                     time.Duration
}

// load sends synchronous OTPs from workers, each to its own number, until
// stop is closed.
func load(t *testing.T, a *apptest.App, workers int, stop <-chan struct{}) func() []sendResult {
	var (
		mu  sync.Mutex
		out []sendResult
		wg  sync.WaitGroup
		n   atomic.Int64
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				phone := fmt.Sprintf("+9198%02d%06d", w, n.Add(1))
				start := time.Now()
				resp := heraldtest.Do(t, "POST", a.URL+"/v1/otp/send", map[string]string{"app": "bank", "phone": phone})
				r := sendResult{phone: phone, code: resp.Status, took: time.Since(start), body: string(resp.Body)}
				if m := resp.JSON(t); m != nil {
					r.requestID, _ = m["requestId"].(string)
					r.status, _ = m["status"].(string)
				}
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return func() []sendResult {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

func leaderOf(t *testing.T, a *apptest.App, stream string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := a.Bus.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Cluster.Leader
}

// Issue 9: losing one of three servers under OTP load — the leader of
// EVENTS, then the leader of a key-value bucket a send writes — fails no
// send, loses no acknowledged event, sends no SMS twice and revokes no code
// that was answered "sent".
func TestLosingAServerUnderOTPLoadFailsNoSendAndRepeatsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := startCluster(t)
	f2s := heraldtest.NewFast2SMS(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	a := apptest.StartApp(t, onCluster(c, clusterConfig(f2s))...)

	stop := make(chan struct{})
	results := load(t, a, 8, stop)
	time.Sleep(time.Second) // some load before the first loss
	for _, stream := range []string{streams.Events, "KV_OTP_CODES"} {
		victim := leaderOf(t, a, stream)
		t.Logf("killing %s, the leader of %s", victim, stream)
		c.Kill(victim)
		time.Sleep(4 * time.Second) // load while the stream elects a new leader
		c.Restart(victim)
		time.Sleep(time.Second)
	}
	close(stop)
	res := results()
	// Read the log once every replica has caught up: a restarted server
	// may still be behind, and what is checked is that nothing accepted
	// was lost, not how soon a follower has it.
	heraldtest.Eventually(t, 60*time.Second, "every replica of EVENTS current", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := a.Bus.JS.Stream(ctx, streams.Events)
		if err != nil || st.CachedInfo().Cluster == nil || len(st.CachedInfo().Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range st.CachedInfo().Cluster.Replicas {
			if !r.Current || r.Lag > 0 || r.Offline {
				return false
			}
		}
		return true
	})

	var failed, pending int
	var slowest time.Duration
	sent := map[string]string{} // request id -> phone
	for _, r := range res {
		slowest = max(slowest, r.took)
		switch {
		case r.code == http.StatusOK && r.status == "sent":
			sent[r.requestID] = r.phone
		case r.code == http.StatusAccepted && r.status == "pending":
			pending++
		default:
			failed++
			t.Errorf("send to %s: %d %s %s", r.phone, r.code, r.status, r.body)
		}
	}
	t.Logf("%d sends: %d sent, %d pending, %d failed; slowest %v", len(res), len(sent), pending, failed, slowest)
	if len(sent) < len(res)/2 {
		t.Fatalf("only %d of %d sends answered sent", len(sent), len(res))
	}

	perPhone := map[string]int{}
	for _, r := range f2s.Requests() {
		perPhone[r.Numbers]++
	}
	for _, r := range res {
		if n := perPhone[strings.TrimPrefix(r.phone, "+91")] + perPhone[strings.TrimPrefix(r.phone, "+")]; n > 1 {
			t.Errorf("%s got %d SMS", r.phone, n)
		}
	}
	generated := map[string]bool{}
	for _, e := range heraldtest.Events(t, a.Bus, streams.Events, "events.otp_generated") {
		generated[e.RequestID] = true
	}
	for _, e := range heraldtest.Events(t, a.Bus, streams.Events, "events.otp_revoked") {
		if _, ok := sent[e.RequestID]; ok {
			t.Errorf("request %s was answered sent and then revoked", e.RequestID)
		}
	}
	for rid := range sent {
		if !generated[rid] {
			t.Errorf("request %s was answered sent but its otp_generated is not in the log", rid)
		}
	}
}

// Issue 9: /readyz tells the truth — 503 while a stream the process needs
// has no leader.
func TestReadyzIsUnavailableWhileANeededStreamHasNoLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := startCluster(t)
	f2s := heraldtest.NewFast2SMS(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	a := apptest.StartApp(t, onCluster(c, clusterConfig(f2s), apptest.WithTargets("dispatcher"))...)
	if r := a.Do(t, "GET", "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz on a healthy cluster: %d %s", r.Status, r.Body)
	}
	// Two of three servers gone: no stream can elect a leader.
	connected := a.Bus.NC.ConnectedServerName()
	lost := 0
	for _, s := range c.Servers {
		if s.Name() != connected && lost < 2 {
			c.Kill(s.Name())
			lost++
		}
	}
	heraldtest.Eventually(t, 30*time.Second, "readyz 503 without a quorum", func() bool {
		return a.Do(t, "GET", "/readyz", nil).Status == http.StatusServiceUnavailable
	})
}

// Issue 9: /readyz is 503 while a stream the process needs is missing, and
// a consumer that was deleted is re-created and consumed again.
func TestReadyzReportsMissingStreamsAndRecreatesConsumers(t *testing.T) {
	a := apptest.StartApp(t)
	// Started is not ready: the incident projection may still be folding.
	heraldtest.Eventually(t, 30*time.Second, "readyz 200 after the start", func() bool {
		return a.Do(t, "GET", "/readyz", nil).Status == http.StatusOK
	})
	ctx := context.Background()
	// What no role may do (delete a durable, the log): a test-only user.
	nc, err := nats.Connect(a.NATSURL, nats.UserCredentials(heraldtest.UnrestrictedCreds(t, bus.CredsDir(a.DataDir))))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	info := func() (int64, error) {
		c, err := js.Consumer(ctx, streams.Events, "dispatcher-otp-outcomes")
		if err != nil {
			return 0, err
		}
		return c.CachedInfo().Created.UnixNano(), nil
	}
	before, err := info()
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(ctx, streams.Events, "dispatcher-otp-outcomes"); err != nil {
		t.Fatal(err)
	}
	heraldtest.Eventually(t, 30*time.Second, "the deleted consumer re-created, readyz 200", func() bool {
		created, err := info()
		r := a.Do(t, "GET", "/readyz", nil)
		return err == nil && created != before && r.Status == http.StatusOK
	})

	// The log itself deleted: 503 naming it, until it is applied again.
	if err := js.DeleteStream(ctx, streams.Events); err != nil {
		t.Fatal(err)
	}
	var r *heraldtest.Response
	heraldtest.Eventually(t, 10*time.Second, "readyz 503 naming EVENTS", func() bool {
		r = a.Do(t, "GET", "/readyz", nil)
		return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "stream EVENTS is missing")
	})
	defs, err := streams.Load(streams.DefaultConfig(), app.ServiceStreamDefs()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Apply(ctx, js, defs, 1); err != nil {
		t.Fatal(err)
	}
	heraldtest.Eventually(t, 30*time.Second, "readyz 200 once EVENTS and its consumers are back", func() bool {
		r = a.Do(t, "GET", "/readyz", nil)
		return r.Status == http.StatusOK
	})
	for _, durable := range []string{"dispatcher-otp-outcomes", "provider-adapter"} {
		if _, err := js.Consumer(ctx, streams.Events, durable); err != nil {
			t.Errorf("consumer %s after the stream came back: %v", durable, err)
		}
	}
}

// Issue 9: the per-app rate limit holds across dispatcher processes: two
// dispatchers on one log together accept the app's burst, not twice it.
func TestThePerAppLimitHoldsAcrossDispatcherProcesses(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	cfg := fmt.Sprintf(`
otp:
  sealKey: %q
  hashKey: %q
apps:
  shop:
    deliveryPolicy: quick_only
    providers: [sim]
    perApp: {rate: 0.01, burst: 10}
    perPhone: {count: 0}
    resendCooldown: 0s
`, key, key)
	var ds []*apptest.App
	for range 2 {
		ds = append(ds, apptest.StartApp(t, apptest.WithTargets("dispatcher"), apptest.WithNATS(srv.ClientURL()),
			apptest.WithNATSCredsDir(srv.CredsDir), apptest.WithConfig(cfg)))
	}
	window := 1000 * time.Second // burst / rate
	first := time.Now().UnixNano() / int64(window)
	codes := map[int]int{}
	for i := range 30 {
		r := ds[i%2].Do(t, "POST", "/v1/otp/send?mode=async", map[string]string{"app": "shop", "phone": fmt.Sprintf("+9198%08d", i)})
		codes[r.Status]++
	}
	want := 10
	if time.Now().UnixNano()/int64(window) != first {
		want = 20 // the sends straddled two windows
	}
	if codes[http.StatusAccepted] > want || codes[http.StatusAccepted] < 10 || codes[http.StatusAccepted]+codes[http.StatusTooManyRequests] != 30 {
		t.Fatalf("answers %v: want at most %d accepted over two processes, the rest 429", codes, want)
	}
}
