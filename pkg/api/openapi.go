package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/heraldhq/herald/schemas"
)

// openAPIYAML is the hand-written description of every route (docs/api.md
// says how to add one).
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIPath is where the server serves its description.
const OpenAPIPath = "/v1/openapi.json"

// openAPIDocument builds the served description from openapi.yaml and the
// route table: it adds the event schemas as components (event.<type>.v<N>),
// marks each operation with the access its route declares
// (x-herald-access), and adds every registered route the file does not
// describe with x-herald-undocumented, so that the document never hides a
// route and TestOpenAPI names the one to describe.
func openAPIDocument(access map[string]Access) ([]byte, error) {
	raw, err := yaml.YAMLToJSON(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	components, _ := doc["components"].(map[string]any)
	compSchemas, _ := components["schemas"].(map[string]any)
	if paths == nil || compSchemas == nil {
		return nil, fmt.Errorf("openapi.yaml: no paths or components.schemas")
	}
	if err := addEventSchemas(compSchemas); err != nil {
		return nil, err
	}
	patterns := make([]string, 0, len(access))
	for p := range access {
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	for _, pattern := range patterns {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "GET", pattern // (a pattern without a method serves them all; described as GET)
		}
		path = docPath(path)
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		op, _ := item[strings.ToLower(method)].(map[string]any)
		if op == nil {
			op = map[string]any{
				"summary":               "Not described: add " + pattern + " to pkg/api/openapi.yaml (docs/api.md).",
				"x-herald-undocumented": true,
				"responses":             map[string]any{"default": map[string]any{"$ref": "#/components/responses/Problem"}},
			}
			item[strings.ToLower(method)] = op
		}
		op["x-herald-access"] = access[pattern].String()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // (descriptions say <error>; the document is read by people too)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return b.Bytes(), nil
}

// docPath is a mux pattern's path as OpenAPI writes it: "/{$}" is "/", a
// wildcard "{rest...}" is "{rest}".
func docPath(pattern string) string {
	return strings.ReplaceAll(strings.ReplaceAll(pattern, "{$}", ""), "...}", "}")
}

// addEventSchemas adds each schemas/*.json as a component. Their $id and
// $schema are left out: the document's dialect is JSON Schema 2020-12
// already, and GET /v1/event-types/{type} serves the files as they are.
func addEventSchemas(into map[string]any) error {
	files, err := fs.Glob(schemas.FS, "*.json")
	if err != nil {
		return fmt.Errorf("openapi: event schemas: %w", err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(schemas.FS, f)
		if err != nil {
			return fmt.Errorf("openapi: %s: %w", f, err)
		}
		var s map[string]any
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("openapi: %s: %w", f, err)
		}
		delete(s, "$id")
		delete(s, "$schema")
		into["event."+strings.TrimSuffix(f, ".json")] = s
	}
	return nil
}

// serveOpenAPI answers the description built at start.
func serveOpenAPI(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}
}
