// Package schemas holds the versioned JSON Schemas of Herald's events, one
// file per type and version: <type>.v<version>.json.
package schemas

import (
	"embed"
	"strconv"
)

// FS is the schema files, embedded in the binary.
//
//go:embed *.json
var FS embed.FS

// BaseURI prefixes every schema's $id and every event's ce-dataschema.
const BaseURI = "https://herald.dev/schemas/"

// File names the schema file of an event type's version.
func File(eventType string, version int) string {
	return eventType + ".v" + strconv.Itoa(version) + ".json"
}
