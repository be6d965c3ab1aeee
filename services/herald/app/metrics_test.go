package app_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

// notMetrics are herald_ names docs/ mention that are not metrics.
var notMetrics = map[string]string{
	"herald_step":              "the Slack message metadata key (docs/notifier.md)",
	"herald_outbox":            "the outbox table's default name (docs/bridges.md)",
	"herald_outbox_offsets":    "the outbox's offsets table",
	"herald_outbox_rejected":   "the outbox's rejected rows",
	"herald_outbox_offset_seq": "the outbox's sequence",
	"herald_code":              "a rejected row's metadata key",
}

// TestMetricsConventions lints a real scrape of the whole platform (every
// target, the bridge too, on a real PostgreSQL outbox; after an OTP send so
// that the sends' series exist) with promlint,
// and checks that every metric docs/ and the README name is exposed — the
// counters already in a scrape taken before anything happened — and
// herald_build_info.
func TestMetricsConventions(t *testing.T) {
	f2s := heraldtest.NewFast2SMS(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	pg := heraldtest.StartPostgres(t)
	a := apptest.StartApp(t, apptest.WithTargets(append(app.AllTargets(), app.Bridge)...), apptest.WithConfig(fmt.Sprintf(`
bridge:
  outbox: [{name: shop, dsn: %q}]
otp:
  sealKey: %q
  hashKey: %q
  deliveryTimeout: 8s
  syncTimeout: 10s
  defaults: {resendCooldown: 0s}
providers:
  fast2sms: {baseURL: %q, timeout: 2s, retries: 2, backoff: 50ms}
%s`, pg.DSN, key, key, f2s.URL, heraldtest.BankApp("dlt_with_fallback"))))

	atStart := scrape(t, a)
	if r := a.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "bank", "phone": "+919812345678"}); r.Status != http.StatusOK {
		t.Fatalf("send: %d %s", r.Status, r.Body)
	}
	body := scrapeText(t, a)

	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	families := parse(t, body)
	for _, name := range docMetrics(t) {
		mf, ok := families[name]
		if !ok {
			t.Errorf("docs name %s, which GET /metrics does not expose", name)
			continue
		}
		// An alert on a counter's increase misses its first occurrence
		// if the series is born at 1: every counter is there from the start.
		if _, early := atStart[name]; !early && mf.GetType() == dto.MetricType_COUNTER && name != answeredOnly {
			t.Errorf("docs name the counter %s, which GET /metrics exposes only once it has counted", name)
		}
	}

	bi := families["herald_build_info"]
	if bi == nil || len(bi.GetMetric()) != 1 || bi.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("herald_build_info: %v, want one gauge of value 1", bi)
	}
	labels := map[string]string{}
	for _, l := range bi.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["goversion"] != runtime.Version() || labels["version"] == "" || labels["revision"] == "" || len(labels) != 3 {
		t.Errorf("herald_build_info labels %v, want version, revision and goversion %s", labels, runtime.Version())
	}
}

// answeredOnly is the counter whose series cannot exist before a request
// is answered: its code label is the answer's.
const answeredOnly = "herald_http_requests_total"

func scrapeText(t *testing.T, a *apptest.App) []byte {
	t.Helper()
	r := a.Do(t, "GET", "/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	return r.Body
}

func scrape(t *testing.T, a *apptest.App) map[string]*dto.MetricFamily {
	t.Helper()
	return parse(t, scrapeText(t, a))
}

func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// docMetrics are the herald_ names in docs/*.md and README.md.
func docMetrics(t *testing.T) []string {
	files, err := filepath.Glob("../../../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("docs: %v %v", files, err)
	}
	re := regexp.MustCompile(`herald_[a-z_]+`)
	var names []string
	for _, f := range append(files, "../../../README.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range re.FindAllString(string(b), -1) {
			// A family's samples (_bucket, _sum, _count) are named by the family.
			n = strings.TrimSuffix(n, "_")
			if _, skip := notMetrics[n]; !skip && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}
