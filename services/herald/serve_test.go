package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/streams"
)

// heraldBin is the herald binary built for the tests that run it as a process.
var heraldBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-bin")
	if err != nil {
		panic(err)
	}
	heraldBin = filepath.Join(dir, "herald")
	if out, err := exec.Command("go", buildArgs(heraldBin, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build herald: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildArgs are go's arguments to build pkg to out, with the race detector
// when the tests run with it: the SIGTERM, SIGKILL and restart tests then
// check the binary's shutdown and recovery paths for races too.
func buildArgs(out, pkg string) []string {
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	return append(args, pkg)
}

func TestTheBinaryUnderTestHasTheRaceDetectorWhenTheTestsDo(t *testing.T) {
	info, err := buildinfo.ReadFile(heraldBin)
	if err != nil {
		t.Fatal(err)
	}
	race := false
	for _, s := range info.Settings {
		if s.Key == "-race" {
			race = s.Value == "true"
		}
	}
	if race != raceEnabled {
		t.Errorf("herald built with -race=%v, the tests run with -race=%v", race, raceEnabled)
	}
}

// raceReport is what a binary built with -race prints when it finds a race
// (it also exits 66 then, but a process the test kills exits by the signal).
const raceReport = "WARNING: DATA RACE"

// serveProc is a running `herald serve`.
type serveProc struct {
	cmd  *exec.Cmd
	http string
	nats string
	done chan error
	logs *strings.Builder
	mu   sync.Mutex
}

// startServe runs herald serve on dataDir with random ports and waits until it is running.
func startServe(t *testing.T, dataDir string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(heraldBin, append([]string{"serve", "--data", dataDir, "--http", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0"}, args...)...)
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan error, 1), logs: &strings.Builder{}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "herald is running" {
				p.http, p.nats = rec["http"].(string), rec["nats"].(string)
				close(ready)
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-p.done:
		t.Fatalf("herald serve exited before it was ready: %v\n%s", err, p.log())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("herald serve not ready after 60s\n%s", p.log())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if strings.Contains(p.log(), raceReport) {
			t.Errorf("herald serve found a data race:\n%s", p.log())
		}
	})
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends sig and returns the exit code.
func (p *serveProc) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("herald serve did not stop within 60s\n%s", p.log())
	}
	return p.cmd.ProcessState.ExitCode()
}

func postEvent(client *http.Client, url string, i int) (string, error) {
	body := fmt.Sprintf(`{"type":"integration_call_completed","source":"load","requestid":"r%d",
		"data":{"integration":"stripe","operation":"op","statusCode":200,"latencyMs":%d}}`, i, i%500)
	resp, err := client.Post(url+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ans struct {
		Events []struct{ ID string } `json:"events"`
	}
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return "", err
	}
	return ans.Events[0].ID, nil
}

// storedIDs reads the event ids in EVENTS of a stopped platform's data dir.
func storedIDs(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	b := heraldtest.OpenDataDir(t, dataDir).As(t, access.OperatorRead)
	ids := map[string]int{}
	for _, m := range heraldtest.Messages(t, b.JS, streams.Events, "events.integration_call_completed") {
		ids[m.Headers().Get("ce-id")]++
	}
	return ids
}

func TestServeRestartedOnTheSameDataDirKeepsEveryEvent(t *testing.T) {
	dataDir := t.TempDir()
	p := startServe(t, dataDir)
	var ids []string
	for i := range 300 {
		id, err := postEvent(http.DefaultClient, p.http, i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d\n%s", code, p.log())
	}
	if !strings.Contains(p.log(), "stopped cleanly") {
		t.Errorf("no clean stop in the log:\n%s", p.log())
	}
	p = startServe(t, dataDir)
	more, err := postEvent(http.DefaultClient, p.http, 300)
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, more)
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
	stored := storedIDs(t, dataDir)
	if len(stored) != len(ids) {
		t.Errorf("%d events stored, want %d", len(stored), len(ids))
	}
	for _, id := range ids {
		if stored[id] != 1 {
			t.Errorf("event %s stored %d times", id, stored[id])
		}
	}
}

func sendOTP(client *http.Client, url string, i int) (string, error) {
	body := fmt.Sprintf(`{"app":"demo","phone":"+9197%08d"}`, i)
	resp, err := client.Post(url+"/v1/otp/send?mode=async", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ans struct {
		RequestID string `json:"requestId"`
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return "", nil // over the demo app's rate: not accepted, not an error
	}
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return "", err
	}
	return ans.RequestID, nil
}

// SIGTERM in the middle of producers' events and OTP sends: every accepted
// event is stored exactly once, and the provider adapter, whose consumer
// was busy with the sends, acknowledged every dispatch it was handed, once.
func TestSIGTERMUnderLoadLosesNoAcceptedEventAndAcksEveryConsumedOneOnce(t *testing.T) {
	dataDir := t.TempDir()
	p := startServe(t, dataDir)
	url := p.http
	var (
		mu       sync.Mutex
		accepted []string
		sends    []string
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * 1_000_000; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if w%2 == 0 {
					id, err := postEvent(client, url, i)
					if err != nil {
						return // the server is going away
					}
					mu.Lock()
					accepted = append(accepted, id)
					mu.Unlock()
					continue
				}
				id, err := sendOTP(client, url, i)
				if err != nil {
					return
				}
				if id != "" {
					mu.Lock()
					sends = append(sends, id)
					mu.Unlock()
				}
			}
		}()
	}
	heraldtest.Eventually(t, 30*time.Second, "some accepted events and sends", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) > 300 && len(sends) > 100
	})
	code := p.stop(t, syscall.SIGTERM)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, p.log())
	}

	srv := heraldtest.OpenDataDir(t, dataDir)
	b := srv.As(t, access.OperatorRead)
	stored := map[string]int{}
	for _, m := range heraldtest.Messages(t, b.JS, streams.Events, "events.integration_call_completed") {
		stored[m.Headers().Get("ce-id")]++
	}
	for _, id := range accepted {
		if stored[id] != 1 {
			t.Errorf("accepted event %s stored %d times", id, stored[id])
		}
	}
	dispatched := map[string]int{}
	for _, m := range heraldtest.Messages(t, b.JS, streams.Events, "events.otp_dlt_dispatch") {
		dispatched[m.Headers().Get("ce-requestid")]++
	}
	for _, id := range sends {
		if dispatched[id] != 1 {
			t.Errorf("accepted send %s dispatched %d times", id, dispatched[id])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Only the adapter's role may see its durable.
	c, err := srv.As(t, access.ProviderAdapter).JS.Consumer(ctx, streams.Events, "provider-adapter")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumRedelivered != 0 || info.Delivered.Consumer == 0 {
		t.Errorf("provider-adapter after SIGTERM: %d delivered, %d unacknowledged, %d redelivered",
			info.Delivered.Consumer, info.NumAckPending, info.NumRedelivered)
	}
	t.Logf("%d events and %d sends accepted before SIGTERM; all stored once; the adapter took %d dispatches and acked each once",
		len(accepted), len(sends), info.Delivered.Consumer)
}
