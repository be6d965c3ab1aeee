package notifier_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/notifier"
)

// BenchmarkNotifier measures the notifier against a fake Slack that
// enforces ~1 message/s per channel (burst 3): latency from incident_opened
// in INCIDENTS to the post under the rate limit (target p99 ≤ 200 ms), then
// 1,000 incidents across 50 channels delivered at the rate limit, none lost
// or duplicated; raw JetStream latencies are measured in the same run.
//
//	go test ./services/notifier -run '^$' -bench Notifier -benchtime 1x
func BenchmarkNotifier(b *testing.B) {
	for range b.N {
		js := heraldtest.JetStream(b)
		s := heraldtest.StartSlack(b, heraldtest.WithSlackRate(1, 3))
		target := SlackTarget{APIURL: s.APIURL, Token: s.Token}
		for i := range 50 {
			id := fmt.Sprintf("C0BENCH%02d", i)
			s.AddChannel(id, fmt.Sprintf("bench-%02d", i))
			target.Channels = append(target.Channels, id)
		}
		target.Received = func() []Received {
			var out []Received
			for _, c := range s.AcceptedCalls() {
				out = append(out, Received{Time: c.Time, Channel: c.Channel, Text: c.Text,
					Root: c.Method == "chat.postMessage" && c.ThreadTS == ""})
			}
			return out
		}
		target.RateLimited = func() int {
			n := 0
			for _, c := range s.Calls() {
				if c.Status == http.StatusTooManyRequests {
					n++
				}
			}
			return n
		}
		target.Violations = func() int { return len(s.RetryAfterViolations()) }
		var progress io.Writer = io.Discard
		if testing.Verbose() {
			progress = os.Stderr
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		r, err := Notifier(ctx, js, target, DefaultNotifierConfig(), slog.New(slog.DiscardHandler), progress)
		cancel()
		r.Write(os.Stdout)
		if err != nil {
			b.Fatal(err)
		}
		if r.Lost > 0 || r.Duplicated > 0 || r.RetryAfterViolations > 0 {
			b.Errorf("%d lost, %d duplicated, %d calls before Retry-After", r.Lost, r.Duplicated, r.RetryAfterViolations)
		}
		b.ReportMetric(float64(r.Latency.P99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(r.Latency.P50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(r.RawRoundTrip.P99.Microseconds())/1000, "raw-p99-ms")
		b.ReportMetric(r.BurstElapsed.Seconds(), "burst-s")
	}
}

// Received is one message a Slack (fake) accepted.
type Received struct {
	Time    time.Time
	Channel string
	Text    string
	Root    bool // a new top-level message (not an edit or a reply)
}

// SlackTarget is the Slack the notifier benchmark posts to: a fake on
// 127.0.0.1 that enforces Slack's per-channel rate limit and reports what
// it accepted and how often it answered 429.
type SlackTarget struct {
	APIURL, Token string
	Channels      []string // channel ids, one per route
	Received      func() []Received
	RateLimited   func() int
	// Violations counts calls that came before a 429's Retry-After elapsed.
	Violations func() int
}

// NotifierConfig sizes the benchmark.
type NotifierConfig struct {
	// LatencyIncidents are published one per channel per LatencyInterval,
	// below the rate limit, to measure latency.
	LatencyIncidents int
	LatencyInterval  time.Duration
	// BurstIncidents are published at once, to measure delivery at the rate limit.
	BurstIncidents int
	// Rate is the notifier's per-channel rate limit.
	Rate  float64
	Burst int
}

// DefaultNotifierConfig is the benchmark: 50 channels, latency
// under the limit, then 1,000 incidents delivered at ~1 message/s/channel.
func DefaultNotifierConfig() NotifierConfig {
	return NotifierConfig{LatencyIncidents: 500, LatencyInterval: 1200 * time.Millisecond, BurstIncidents: 1000, Rate: 1, Burst: 3}
}

// NotifierReport is the benchmark's outcome.
type NotifierReport struct {
	Channels int
	// Latency: publishing incident_opened to INCIDENTS (write included) →
	// the post received.
	Latency Latencies
	// Raw JetStream in the same run: a sync publish and its delivery to a
	// consumer (the floor of any projection's latency), and a sync
	// write-once publish (what each ledger entry costs).
	RawRoundTrip, RawPublishOnce Latencies
	// Burst delivery.
	BurstN, Delivered, Lost, Duplicated int
	BurstElapsed                        time.Duration
	// Ideal is how long the burst takes at exactly the rate limit.
	Ideal       time.Duration
	RateLimited int
	// RetryAfterViolations over the whole run.
	RetryAfterViolations int
	// LedgerWrite: Slack's answer → ledger acknowledged (histogram bounds).
	LedgerP50, LedgerP99 string
}

// Latencies are percentiles of a sample.
type Latencies struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

func percentiles(d []time.Duration) Latencies {
	if len(d) == 0 {
		return Latencies{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)] }
	return Latencies{N: len(s), P50: at(.5), P90: at(.9), P99: at(.99), Max: s[len(s)-1]}
}

func (l Latencies) String() string {
	return fmt.Sprintf("n=%d p50 %s  p90 %s  p99 %s  max %s", l.N, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// Notifier runs the notifier benchmark on b (streams applied, empty) against
// the Slack target, and reports. progress receives a line per phase.
func Notifier(ctx context.Context, b *bus.Bus, slack SlackTarget, cfg NotifierConfig, log *slog.Logger, progress io.Writer) (NotifierReport, error) {
	r := NotifierReport{Channels: len(slack.Channels)}
	var err error
	if r.RawRoundTrip, r.RawPublishOnce, err = rawLatency(ctx, b, 300); err != nil {
		return r, err
	}
	fmt.Fprintf(progress, "raw JetStream: publish→consume %s; write-once publish %s\n", r.RawRoundTrip, r.RawPublishOnce)

	ncfg := notifier.DefaultConfig()
	ncfg.Slack.APIURL, ncfg.Slack.BotToken = slack.APIURL, slack.Token
	ncfg.RateLimit.PerSecond, ncfg.RateLimit.Burst = cfg.Rate, cfg.Burst
	for i, ch := range slack.Channels {
		ncfg.Routes = append(ncfg.Routes, notifier.Route{Name: fmt.Sprintf("r%02d", i),
			Match: event.SubscriptionMatch{App: appName(i)}, Channels: []string{ch}})
	}
	reg := prometheus.NewRegistry()
	n, err := notifier.New(ncfg, notifier.Deps{Bus: b, Log: log, Registry: reg, Stdout: io.Discard})
	if err != nil {
		return r, err
	}
	if err := n.Start(ctx); err != nil {
		return r, err
	}
	defer n.Stop(context.WithoutCancel(ctx))

	// Latency: each channel gets one incident per interval, below the limit.
	published := map[string]time.Time{}
	channels := len(slack.Channels)
	step := cfg.LatencyInterval / time.Duration(channels)
	next := time.Now()
	for i := range cfg.LatencyIncidents {
		time.Sleep(time.Until(next))
		next = next.Add(step)
		t0 := time.Now()
		id, err := openIncident(ctx, b, i, appName(i%channels))
		if err != nil {
			return r, err
		}
		published[id] = t0
	}
	if err := waitPosts(ctx, slack, len(published)); err != nil {
		return r, err
	}
	var lat []time.Duration
	for _, m := range slack.Received() {
		if t, ok := published[benchIncidentIn(m.Text)]; ok && m.Root {
			lat = append(lat, m.Time.Sub(t))
		}
	}
	r.Latency = percentiles(lat)
	fmt.Fprintf(progress, "latency under the rate limit (%d channels, one incident per channel every %s): %s\n",
		channels, cfg.LatencyInterval, r.Latency)
	// Let every channel's bucket refill before the burst.
	time.Sleep(time.Duration(float64(cfg.Burst)/cfg.Rate*float64(time.Second)) + time.Second)

	// Burst: every incident at once; delivered at the rate limit.
	before := len(slack.Received())
	limitedBefore := slack.RateLimited()
	burst := map[string]bool{}
	start := time.Now()
	for i := range cfg.BurstIncidents {
		id, err := openIncident(ctx, b, cfg.LatencyIncidents+i, appName(i%channels))
		if err != nil {
			return r, err
		}
		burst[id] = true
	}
	perChannel := int(math.Ceil(float64(cfg.BurstIncidents) / float64(channels)))
	r.Ideal = time.Duration(float64(max(perChannel-cfg.Burst, 0)) / cfg.Rate * float64(time.Second))
	fmt.Fprintf(progress, "burst: %d incidents published in %s; at the rate limit they take ~%s…\n",
		cfg.BurstIncidents, time.Since(start).Round(time.Millisecond), r.Ideal)
	wctx, cancel := context.WithTimeout(ctx, 3*r.Ideal+30*time.Second)
	defer cancel()
	err = waitPosts(wctx, slack, before+cfg.BurstIncidents)
	r.BurstElapsed = time.Since(start)
	time.Sleep(time.Second) // a duplicate would arrive now
	seen := map[string]int{}
	for _, m := range slack.Received()[before:] {
		if m.Root {
			seen[benchIncidentIn(m.Text)]++
		}
	}
	r.BurstN = cfg.BurstIncidents
	for id := range burst {
		switch c := seen[id]; {
		case c == 0:
			r.Lost++
		case c > 1:
			r.Duplicated += c - 1
		}
		if seen[id] > 0 {
			r.Delivered++
		}
	}
	r.RateLimited = slack.RateLimited() - limitedBefore
	r.RetryAfterViolations = slack.Violations()
	r.LedgerP50, r.LedgerP99 = histogramQuantiles(reg, "herald_notifier_ledger_write_duration_seconds")
	if err != nil {
		return r, fmt.Errorf("burst: %d of %d delivered: %w", r.Delivered, r.BurstN, err)
	}
	return r, nil
}

func appName(i int) string { return fmt.Sprintf("app%02d", i) }

func openIncident(ctx context.Context, b *bus.Bus, i int, app string) (string, error) {
	id := fmt.Sprintf("inc-%016x", i)
	at := time.Now().UTC()
	e := event.New("bench", event.IncidentOpened{IncidentID: id, Rule: "otp-failure-rate", Kind: "ratio", Severity: "P2",
		Group: map[string]string{"app": app}, OpenedAt: at, Summary: "bench " + id,
		Evidence: event.Evidence{Failed: 23, Total: 100, Ratio: .23, Window: "5m0s"}},
		event.WithID(id+"-0"), event.WithTime(at), event.WithSubject("incidents.incident_opened."+id+".0"))
	_, err := b.PublishOnce(ctx, e)
	return id, err
}

func benchIncidentIn(text string) string {
	i := strings.Index(text, "bench inc-")
	if i < 0 {
		return ""
	}
	return text[i+6 : i+6+20]
}

func waitPosts(ctx context.Context, s SlackTarget, n int) error {
	for {
		roots := 0
		for _, m := range s.Received() {
			if m.Root {
				roots++
			}
		}
		if roots >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d posts received: %w", roots, n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// rawLatency measures, on the same server, a sync publish and its delivery
// to a consumer, and a sync write-once publish.
func rawLatency(ctx context.Context, b *bus.Bus, n int) (Latencies, Latencies, error) {
	const name = "BENCH_RAW_LATENCY"
	s, err := b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"benchraw.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return Latencies{}, Latencies{}, err
	}
	defer b.JS.DeleteStream(context.WithoutCancel(ctx), name)
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"benchraw.rt.>"}})
	if err != nil {
		return Latencies{}, Latencies{}, err
	}
	got := make(chan time.Time, 1)
	cc, err := c.Consume(func(jetstream.Msg) { got <- time.Now() })
	if err != nil {
		return Latencies{}, Latencies{}, err
	}
	defer cc.Stop()
	body := []byte(strings.Repeat("x", 600))
	var rt, once []time.Duration
	for i := range n {
		t0 := time.Now()
		if _, err := b.JS.Publish(ctx, fmt.Sprintf("benchraw.rt.%d", i), body); err != nil {
			return Latencies{}, Latencies{}, err
		}
		select {
		case t := <-got:
			rt = append(rt, t.Sub(t0))
		case <-time.After(5 * time.Second):
			return Latencies{}, Latencies{}, errors.New("raw consumer: no delivery in 5s")
		}
		t0 = time.Now()
		if _, err := b.JS.Publish(ctx, fmt.Sprintf("benchraw.once.%d", i), body, jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
			return Latencies{}, Latencies{}, err
		}
		once = append(once, time.Since(t0))
		time.Sleep(2 * time.Millisecond) // a steady trickle, as incidents are
	}
	return percentiles(rt), percentiles(once), nil
}

// histogramQuantiles reads the bucket bounds holding the median and the
// 99th percentile of a histogram.
func histogramQuantiles(reg *prometheus.Registry, name string) (string, string) {
	mfs, err := reg.Gather()
	if err != nil {
		return "?", "?"
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		total := float64(h.GetSampleCount())
		q := func(p float64) string {
			for _, bk := range h.GetBucket() {
				if float64(bk.GetCumulativeCount()) >= p*total {
					return fmt.Sprintf("≤ %gms", bk.GetUpperBound()*1000)
				}
			}
			return "> 1s"
		}
		return q(.5), q(.99)
	}
	return "?", "?"
}

// Write prints the report as Markdown.
func (r NotifierReport) Write(w io.Writer) {
	fmt.Fprintf(w, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(w, "| raw JetStream: sync publish → ordered consumer | %s |\n", r.RawRoundTrip)
	fmt.Fprintf(w, "| raw JetStream: sync write-once publish | %s |\n", r.RawPublishOnce)
	fmt.Fprintf(w, "| publish incident_opened to INCIDENTS → fake Slack has the post (%d channels, under the limit) | %s |\n", r.Channels, r.Latency)
	fmt.Fprintf(w, "| ledger write after Slack's answer (the duplicate window) | p50 %s, p99 %s |\n", r.LedgerP50, r.LedgerP99)
	fmt.Fprintf(w, "| burst: %d incidents over %d channels | %d delivered, %d lost, %d duplicated in %s (ideal at the limit: %s); %d answers 429, %d calls before Retry-After |\n",
		r.BurstN, r.Channels, r.Delivered, r.Lost, r.Duplicated, r.BurstElapsed.Round(10*time.Millisecond), r.Ideal, r.RateLimited,
		r.RetryAfterViolations)
}

// BenchmarkNotifierGrouped is BenchmarkNotifier's burst with grouping: 1,000
// incidents opening at once over 50 channels, groupWait 2s, against the same
// fake Slack (~1 message/s per channel, burst 3; chat.update at Herald's
// default 50/min per workspace). It reports the messages posted and edited,
// the time until every incident is listed in a root, and that none is lost
// or listed twice.
//
//	go test ./services/notifier -run '^$' -bench NotifierGrouped -benchtime 1x
func BenchmarkNotifierGrouped(b *testing.B) {
	const incidents, channels = 1000, 50
	for range b.N {
		js := heraldtest.JetStream(b)
		s := heraldtest.StartSlack(b, heraldtest.WithSlackRate(1, 3))
		cfg := notifier.DefaultConfig()
		cfg.Slack.APIURL, cfg.Slack.BotToken = s.APIURL, s.Token
		cfg.GroupWait = cfgDuration(2 * time.Second)
		var ids []string
		for i := range channels {
			id := fmt.Sprintf("C0BENCH%02d", i)
			s.AddChannel(id, fmt.Sprintf("bench-%02d", i))
			ids = append(ids, id)
			cfg.Routes = append(cfg.Routes, notifier.Route{Name: fmt.Sprintf("r%02d", i),
				Match: event.SubscriptionMatch{App: appName(i)}, Channels: []string{id}})
		}
		n, err := notifier.New(cfg, notifier.Deps{Bus: js, Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
			Stdout: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := n.Start(ctx); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		want := map[string]string{} // incident → channel
		for i := range incidents {
			id, err := openIncident(ctx, js, i, appName(i%channels))
			if err != nil {
				b.Fatal(err)
			}
			want[id] = ids[i%channels]
		}
		published := time.Since(start)
		listed := func() (lost, twice int) {
			for id, ch := range want {
				c := 0
				for _, m := range s.Messages(ch) {
					if m.ThreadTS == "" {
						c += strings.Count(string(m.Blocks), "bench "+id)
					}
				}
				switch {
				case c == 0:
					lost++
				case c > 1:
					twice++
				}
			}
			return lost, twice
		}
		for lost := incidents; lost > 0 && ctx.Err() == nil; {
			changed := s.Changed()
			if lost, _ = listed(); lost == 0 {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
			}
		}
		last := time.Since(start)
		time.Sleep(2 * time.Second) // a duplicate or a late edit would arrive now
		lost, twice := listed()
		var posts, edits, limited int
		for _, c := range s.Calls() {
			switch {
			case c.Status == http.StatusTooManyRequests:
				limited++
			case !c.Accepted():
			case c.Method == "chat.postMessage":
				posts++
			case c.Method == "chat.update":
				edits++
			}
		}
		if err := n.Stop(context.WithoutCancel(ctx)); err != nil {
			b.Error(err)
		}
		cancel()
		fmt.Printf("| grouped burst: %d incidents over %d channels, groupWait %s | published in %s; %d posts, %d edits, every incident listed after %s; %d lost, %d listed twice; %d answers 429, %d calls before Retry-After |\n",
			incidents, channels, cfg.GroupWait.D(), published.Round(time.Millisecond), posts, edits, last.Round(10*time.Millisecond),
			lost, twice, limited, len(s.RetryAfterViolations()))
		if lost > 0 || twice > 0 {
			b.Errorf("%d lost, %d listed twice", lost, twice)
		}
		b.ReportMetric(float64(posts), "posts")
		b.ReportMetric(float64(edits), "edits")
		b.ReportMetric(last.Seconds(), "last-s")
	}
}
