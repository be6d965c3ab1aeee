package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

const (
	openAPIOperatorKey = "hrld_openapi_operator_key_for_tests"
	openAPIProducerKey = "hrld_openapi_producer_key_for_tests"
)

// TestOpenAPI checks GET /v1/openapi.json against the running platform
// (every target): the document is valid OpenAPI 3.1; every route a service
// registers is described there (pkg/api/openapi.yaml), with the security
// its access needs; every described operation answers (the router's 404
// and 405 would mean no route), without a key and with one; and every
// answer, errors included, matches the document.
func TestOpenAPI(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithConfig(`http:
  auth:
    keys:
      - {name: ops, role: operator, hash: "`+api.HashKey(openAPIOperatorKey)+`"}
      - {name: shop, role: producer, hash: "`+api.HashKey(openAPIProducerKey)+`", apps: [demo]}
`))
	resp := a.Do(t, "GET", api.OpenAPIPath, nil)
	if resp.Status != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s", api.OpenAPIPath, resp.Status, resp.Header.Get("Content-Type"))
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(resp.Body)
	if err != nil {
		t.Fatalf("loading the document: %v", err)
	}
	ctx := context.Background()
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Find(path)
		for method, op := range item.Operations() {
			name := method + " " + path
			t.Run(name, func(t *testing.T) {
				if op.Extensions["x-herald-undocumented"] == true {
					t.Fatalf("route %q is registered by a service but not described: add it to pkg/api/openapi.yaml (docs/api.md, \"Adding a route\")", name)
				}
				access, _ := op.Extensions["x-herald-access"].(string)
				if access == "" {
					t.Fatalf("%s is described in pkg/api/openapi.yaml but no service registers it: remove it or register the route", name)
				}
				checkSecurity(t, name, access, op)
				route := &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
				keys := []string{""}
				switch access {
				case "operator":
					keys = append(keys, openAPIOperatorKey)
				case "producer":
					keys = append(keys, openAPIProducerKey)
				}
				for _, key := range keys {
					probeOperation(t, a, route, key)
				}
			})
		}
	}
}

// checkSecurity: an operation's security is the one its route's access needs.
func checkSecurity(t *testing.T, name, access string, op *openapi3.Operation) {
	t.Helper()
	var schemes []string
	if op.Security != nil {
		for _, req := range *op.Security {
			for s := range req {
				schemes = append(schemes, s)
			}
		}
	}
	slices.Sort(schemes)
	want := map[string][]string{"public": nil, "producer": {"producerKey"}, "operator": {"operatorKey"}}
	if w, ok := want[access]; ok {
		if op.Security == nil || !slices.Equal(schemes, w) {
			t.Errorf("%s is %s: its security must be %v in pkg/api/openapi.yaml, not %v", name, access, w, schemes)
		}
		return
	}
	// Signed: the third party's signature, never an API key.
	if len(schemes) == 0 || slices.Contains(schemes, "producerKey") || slices.Contains(schemes, "operatorKey") {
		t.Errorf("%s is signed: its security must name the signature scheme, not %v", name, schemes)
	}
}

// probeOperation sends the operation a harmless request (path parameters
// from their examples or "x", an empty JSON object or form) and validates
// the answer against the document.
func probeOperation(t *testing.T, a *apptest.App, route *routers.Route, key string) {
	t.Helper()
	path := route.Path
	params := map[string]string{}
	for _, p := range route.Operation.Parameters {
		if p.Value.In != "path" {
			continue
		}
		v := "x"
		if p.Value.Example != nil {
			v, _ = p.Value.Example.(string)
		}
		params[p.Value.Name] = v
		path = strings.ReplaceAll(path, "{"+p.Value.Name+"}", v)
	}
	for _, p := range route.PathItem.Parameters {
		if p.Value.In == "path" {
			params[p.Value.Name] = "x"
			path = strings.ReplaceAll(path, "{"+p.Value.Name+"}", "x")
		}
	}
	var body io.Reader
	header := http.Header{}
	if rb := route.Operation.RequestBody; rb != nil {
		var types []string
		for ct := range rb.Value.Content {
			types = append(types, ct)
		}
		slices.Sort(types)
		ct := types[0]
		if slices.Contains(types, "application/json") {
			ct = "application/json"
		}
		header.Set("Content-Type", ct)
		body = strings.NewReader(map[bool]string{true: "{}", false: ""}[strings.HasSuffix(ct, "json")])
	}
	if key != "" {
		header.Set("Authorization", "Bearer "+key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, route.Method, a.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	var b []byte
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		// A stream never ends: its status and headers are checked, not its body.
		opts.ExcludeResponseBody = true
	} else if b, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	what := route.Method + " " + path
	if key != "" {
		what += " (with a key)"
	}
	if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound && bytes.Contains(b, []byte(`"no route for `)) {
		t.Fatalf("%s: %d %s: the described operation has no route", what, resp.StatusCode, b)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(b)), Options: opts,
	}); err != nil {
		t.Errorf("%s answered %d %s\nwhich does not match the document: %v", what, resp.StatusCode, b, err)
	}
	if resp.StatusCode >= 400 {
		checkProblem(t, what, path, resp.StatusCode, resp.Header, b)
	}
}

// checkProblem: an error answer is an RFC 9457 problem that keeps Herald's
// error and detail, its instance the request's path.
func checkProblem(t *testing.T, what, path string, status int, h http.Header, b []byte) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != api.ProblemContentType {
		t.Errorf("%s: Content-Type %q, want %s", what, ct, api.ProblemContentType)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	code, _ := p["error"].(string)
	if code == "" || p["type"] != api.ProblemBaseURI+code || p["title"] == "" || p["status"] != float64(status) || p["instance"] != path {
		t.Errorf("%s: %s is not a problem of its status with type %s<error> and instance %s", what, b, api.ProblemBaseURI, path)
	}
}

// TestRouterErrorsAreProblems: the router's 404 and 405 and the keys' 401
// are problems that match the document's Problem schema.
func TestRouterErrorsAreProblems(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("incident"), apptest.WithConfig(`http:
  auth:
    keys:
      - {name: ops, role: operator, hash: "`+api.HashKey(openAPIOperatorKey)+`"}
      - {name: shop, role: producer, hash: "`+api.HashKey(openAPIProducerKey)+`", apps: [demo]}
`))
	doc, err := openapi3.NewLoader().LoadFromData(a.Do(t, "GET", api.OpenAPIPath, nil).Body)
	if err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas["Problem"].Value
	tests := []struct {
		name, method, path string
		header             []string
		status             int
		code               string
	}{
		{"no route", "GET", "/v1/nothing-here", nil, http.StatusNotFound, "not_found"},
		{"wrong method", "DELETE", "/v1/incidents", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"no key", "GET", "/v1/incidents", nil, http.StatusUnauthorized, "missing_credentials"},
		{"unknown key", "GET", "/v1/incidents", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized, "invalid_credentials"},
		{"wrong role", "GET", "/v1/incidents", []string{"Authorization", "Bearer " + openAPIProducerKey}, http.StatusForbidden, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := a.Do(t, tt.method, tt.path, nil, tt.header...)
			if resp.Status != tt.status {
				t.Fatalf("%d %s, want %d", resp.Status, resp.Body, tt.status)
			}
			checkProblem(t, tt.name, tt.path, tt.status, resp.Header, resp.Body)
			var v any
			if err := json.Unmarshal(resp.Body, &v); err != nil {
				t.Fatal(err)
			}
			if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s does not match the Problem schema: %v", resp.Body, err)
			}
			if p := resp.JSON(t); p["error"] != tt.code || p["detail"] == "" {
				t.Errorf("%s: error %v, want %s with a detail", resp.Body, p["error"], tt.code)
			}
		})
	}
}
