package event

import (
	"fmt"
	"io"
	"strings"

	"github.com/heraldhq/herald/schemas"
)

// WriteMarkdown renders the catalog as docs/events.md. The file is generated
// from the schemas so that it cannot drift from them; a test compares the two.
func (c *Catalog) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Event catalog\n\n")
	b.WriteString("<!-- Generated from schemas/*.json by `go test ./pkg/event -run TestEventsDoc -update`. Do not edit. -->\n\n")
	b.WriteString("Every event is a NATS message: CloudEvents attributes as headers (`ce-specversion`, `ce-id`, `ce-type`,\n")
	b.WriteString("`ce-source`, `ce-time`, `ce-dataschema`, and Herald's `ce-requestid` (correlation) and `ce-causationid`),\n")
	b.WriteString("`Nats-Msg-Id` equal to `ce-id`, and the typed JSON data as the body. Subjects are `<log>.<type>`;\n")
	b.WriteString("the `events` log is the `EVENTS` stream, `incidents` is `INCIDENTS`, `notifications` is `NOTIFICATIONS`.\n\n")
	b.WriteString("| type | log | schema | description |\n|---|---|---|---|\n")
	for _, d := range c.order {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | `schemas/%s` | %s |\n", d.Type, d.Type, d.Log, schemas.File(string(d.Type), d.Version), d.Description)
	}
	for _, d := range c.order {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\nLog `%s`, version %d, schema `%s`.\n\n", d.Type, d.Description, d.Log, d.Version, d.SchemaURI)
		b.WriteString("| field | type | required | description |\n|---|---|---|---|\n")
		for _, f := range d.Fields {
			req := ""
			if f.Required {
				req = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, req, f.Description)
		}
		if len(d.Example) > 0 {
			fmt.Fprintf(&b, "\nExample data:\n\n```json\n%s\n```\n", d.Example)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
