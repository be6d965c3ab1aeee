package scratch

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/streams"
)

func TestStages(t *testing.T) {
	a := heraldtest.StartApp(t, heraldtest.WithTargets("dispatcher", "provider-adapter"), heraldtest.WithLogOutput(io.Discard),
		heraldtest.WithConfig(`
otp:
  defaults:
    perApp: {rate: 0}
providers:
  sim: {latency: 1ms}
apps:
  bench:
    deliveryPolicy: dlt_with_fallback
    providers: [sim]
    dlt:
      senderId: HERALD
      entityId: "1701000000000000001"
      templateId: "1707000000000000001"
      messageId: "100001"
      text: "{#numeric#} is your code. It expires in {#numeric#} minutes."
      variables: [{value: "{code}", tag: numeric}, {value: "{minutes}", tag: numeric}]
`))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var lat []time.Duration
	var mu sync.Mutex
	for i := 0; time.Now().Before(stop); i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			{
				st := time.Now()
				body := fmt.Sprintf(`{"app":"bench","phone":"+9198%08d"}`, i)
				resp, err := client.Post(a.URL+"/v1/otp/send", "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
					return
				}
				n.Add(1)
				mu.Lock()
				lat = append(lat, time.Since(st))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("http p50=%v p99=%v max=%v", lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	t.Logf("%d sends, %.0f/s", n.Load(), float64(n.Load())/5)
	type times map[string]time.Time
	byReq := map[string]times{}
	for _, m := range heraldtest.Messages(t, a.Bus.JS, streams.Events) {
		meta, _ := m.Metadata()
		r := m.Headers().Get("ce-requestid")
		if byReq[r] == nil {
			byReq[r] = times{}
		}
		typ := m.Headers().Get("ce-type")
		ct, _ := time.Parse(time.RFC3339Nano, m.Headers().Get("ce-time"))
		byReq[r][typ+".stored"] = meta.Timestamp
		byReq[r][typ+".ce"] = ct
	}
	stages := [][2]string{
		{"otp_generated.ce", "otp_dlt_dispatch.stored"},
		{"otp_dlt_dispatch.stored", "dlt_payload_ready.ce"},
		{"dlt_payload_ready.ce", "provider_response_received.ce"},
		{"provider_response_received.ce", "otp_delivery_completed.stored"},
		{"otp_generated.ce", "otp_delivery_completed.stored"},
	}
	slow := 0
	agg := map[string]time.Duration{}
	for _, ts := range byReq {
		tot := ts["otp_delivery_completed.stored"].Sub(ts["otp_generated.ce"])
		if tot < 8*time.Millisecond || ts["otp_generated.ce"].IsZero() {
			continue
		}
		slow++
		for _, st := range stages[:4] {
			agg[st[0]+" -> "+st[1]] += ts[st[1]].Sub(ts[st[0]])
		}
	}
	for k, v := range agg {
		t.Logf("slow requests (%d): mean %v in %s", slow, v/time.Duration(max(slow, 1)), k)
	}
	for _, st := range stages {
		var ds []time.Duration
		for _, ts := range byReq {
			a, ok1 := ts[st[0]]
			b, ok2 := ts[st[1]]
			if ok1 && ok2 {
				ds = append(ds, b.Sub(a))
			}
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		if len(ds) > 0 {
			t.Logf("%-32s -> %-32s n=%d p50=%v p90=%v p99=%v max=%v", st[0], st[1], len(ds), ds[len(ds)/2], ds[len(ds)*9/10], ds[len(ds)*99/100], ds[len(ds)-1])
		}
	}
}
