package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

// The HTTP metrics name the method, the route's path pattern and the
// status code apart; a client's own method and path never become a label.
func TestHTTPMetricsLabelMethodRouteAndCode(t *testing.T) {
	reg := prometheus.NewRegistry()
	url := serve(t, nil, reg, []api.Route{
		{Pattern: "GET /v1/things/{id}", Access: api.Public, Handler: echo},
	})
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/things/1"}, {"GET", "/v1/things/2"}, {"POST", "/v1/things/1"}, {"GET", "/nope"}, {"BREW", "/v1/things/1"},
	} {
		heraldtest.Do(t, r.method, url+r.path, nil)
	}
	want := []string{ // sorted
		"GET /v1/things/{id} 200",
		"GET unmatched 404",
		"POST unmatched 405",
		"other unmatched 405",
	}
	for _, name := range []string{"herald_http_requests_total", "herald_http_request_duration_seconds"} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				got = append(got, strings.Join([]string{l["method"], l["route"], l["code"]}, " "))
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
