package console_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

const operatorKey = "op-secret-key-for-the-console-test"

// withKeys configures an operator key on loopback: the page stays public,
// its feeds need the key, exactly like GET /v1/incidents.
func withKeys() apptest.AppOption {
	sum := sha256.Sum256([]byte(operatorKey))
	return apptest.WithConfig(fmt.Sprintf(`
http:
  auth:
    keys:
      - {name: ops, role: operator, hash: "sha256:%s"}
`, hex.EncodeToString(sum[:])))
}

func get(t *testing.T, ctx context.Context, url, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAccess(t *testing.T) {
	a := apptest.StartApp(t, withKeys(), apptest.WithTargets("incident"))
	ctx := context.Background()
	tests := []struct {
		path   string
		key    string
		status int
	}{
		{"/", "", http.StatusOK},
		{"/console/console.js", "", http.StatusOK},
		{"/console/nothing.js", "", http.StatusNotFound},
		{"/v1/health/delivery", "", http.StatusUnauthorized},
		{"/v1/health/delivery", operatorKey, http.StatusOK},
		{"/v1/health/delivery?window=1s", operatorKey, http.StatusBadRequest},
		{"/v1/dlq", "", http.StatusUnauthorized},
		{"/v1/dlq", operatorKey, http.StatusOK},
		{"/v1/trace/r-1", "", http.StatusUnauthorized},
		{"/v1/trace/r-1", operatorKey, http.StatusOK},
		{"/v1/events/stream", "", http.StatusUnauthorized},
		{"/v1/events/stream?type=events.>", operatorKey, http.StatusBadRequest},
		{"/v1/incidents", "", http.StatusUnauthorized}, // the page's other feeds, as they were
	}
	for _, tc := range tests {
		r := get(t, ctx, a.URL+tc.path, tc.key)
		r.Body.Close()
		if r.StatusCode != tc.status {
			t.Errorf("GET %s (key %v): %d, want %d", tc.path, tc.key != "", r.StatusCode, tc.status)
		}
		if tc.path == "/" && r.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET /: no Content-Security-Policy")
		}
	}
}

// TestTailStream reads one request's chain from the SSE feed, then resumes
// after the last id it got.
func TestTailStream(t *testing.T) {
	// A 3 s write timeout: one answer of the tail lasts 2 s.
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher", "provider-adapter"), apptest.WithConfig("http: {writeTimeout: 3s}\n"))
	ids := send(t, a, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func(query string, n int) []string {
		r := get(t, ctx, a.URL+"/v1/events/stream?"+query, "")
		defer r.Body.Close()
		if ct := r.Header.Get("Content-Type"); r.StatusCode != http.StatusOK || ct != "text/event-stream" {
			t.Fatalf("stream: %d %s", r.StatusCode, ct)
		}
		var got []string
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(nil, 1<<20)
		for len(got) < n && sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e struct {
				Seq       uint64 `json:"seq"`
				Type      string `json:"type"`
				RequestID string `json:"requestId"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatal(err)
			}
			if e.RequestID != ids[0] {
				t.Errorf("filtered by %s, got %+v", ids[0], e)
			}
			got = append(got, fmt.Sprintf("%d %s", e.Seq, e.Type))
		}
		return got
	}
	got := read("requestId="+ids[0], 5)
	want := []string{"otp_generated", "otp_dlt_dispatch", "dlt_payload_ready", "provider_response_received", "otp_delivery_completed"}
	if len(got) != len(want) {
		t.Fatalf("tail: %v", got)
	}
	for i, w := range want {
		if !strings.HasSuffix(got[i], " "+w) {
			t.Errorf("tail: %v, want %v", got, want)
			break
		}
	}
	var last uint64
	fmt.Sscan(got[1], &last)
	if again := read("requestId="+ids[0]+"&after="+fmt.Sprint(last), 3); len(again) != 3 || again[0] != got[2] {
		t.Errorf("after %d: %v, want %v", last, again, got[2:])
	}

	// An answer ends before the write timeout with where it read to: the
	// last event of the log, though the filter matched none after ids[0]'s.
	r := get(t, ctx, a.URL+"/v1/events/stream?requestId="+ids[0], "")
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(strings.TrimSpace(string(body)), "\n\n")
	if end := blocks[len(blocks)-1]; len(blocks) != 7 || !strings.Contains(end, "event: position") || !strings.HasPrefix(end, "id: ") {
		t.Fatalf("answer: %q", body)
	}
	var pos uint64
	fmt.Sscanf(blocks[6], "id: %d", &pos)
	if last := heraldtest.Events(t, a.Bus, "EVENTS"); pos != last[len(last)-1].Sequence {
		t.Errorf("position %d, the log ends at %d", pos, last[len(last)-1].Sequence)
	}
}
