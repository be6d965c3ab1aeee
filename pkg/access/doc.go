package access

import (
	"fmt"
	"io"
	"strings"

	"github.com/heraldhq/herald/pkg/event"
)

// WriteMarkdown writes the table for docs/security.md: what each role may
// do, in Herald's terms, then the NATS subjects its user JWT carries.
func WriteMarkdown(w io.Writer, cat *event.Catalog) error {
	table, err := Table(cat)
	if err != nil {
		return err
	}
	grants := Grants()
	var b strings.Builder
	b.WriteString("| role | publishes | consumes (durable: filter) | reads (ordered consumers) | last message of | key-value buckets | streams |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range Roles() {
		b.WriteString(grantRow(cat, r, grants[r]))
	}
	b.WriteString("\nThe NATS permissions in each role's user JWT (the server refuses everything else):\n")
	for _, r := range Roles() {
		writeSubjects(&b, r, table[r])
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// grantRow is the role's row of the table, in Herald's terms.
func grantRow(cat *event.Catalog, r Role, g Grant) string {
	var pubs, durs, reads, last []string
	for _, d := range cat.Defs() {
		if g.Owner != "" && d.Owner == g.Owner {
			pubs = append(pubs, "`"+string(d.Type)+"`")
		}
	}
	for _, d := range g.Durables {
		durs = append(durs, fmt.Sprintf("`%s`: `%s`", d.Name, d.Filter))
	}
	for _, rd := range g.Reads {
		if rd.Filter == "" {
			reads = append(reads, rd.Stream)
		} else {
			reads = append(reads, fmt.Sprintf("%s (`%s`)", rd.Stream, rd.Filter))
		}
	}
	for _, l := range g.LastBy {
		last = append(last, fmt.Sprintf("%s `%s`", l.Stream, l.Filter))
	}
	return fmt.Sprintf("| `%s` | %s | %s | %s | %s | %s | %s |\n", r, cell(pubs), cell(durs), cell(reads), cell(last),
		cell(g.Buckets), cell(streamRights(g)))
}

// streamRights lists what the grant may do to streams themselves.
func streamRights(g Grant) []string {
	var admin []string
	if g.ManageStreams {
		admin = append(admin, "create, update")
	}
	for _, s := range g.DeleteMsgs {
		admin = append(admin, "delete messages of "+s)
	}
	for _, s := range g.Purge {
		admin = append(admin, "purge "+s)
	}
	if len(g.GetBySeq) > 0 {
		admin = append(admin, "get by sequence: "+strings.Join(g.GetBySeq, ", "))
	}
	if len(g.StreamInfo) > 0 || g.ListStreams {
		admin = append(admin, "info, list")
	}
	return admin
}

// writeSubjects writes the role's NATS permissions, folded.
func writeSubjects(b *strings.Builder, r Role, p Permissions) {
	fmt.Fprintf(b, "\n<details><summary><code>%s</code></summary>\n\n", r)
	list := func(name string, subs []string) {
		if len(subs) == 0 {
			return
		}
		fmt.Fprintf(b, "- %s: `%s`\n", name, strings.Join(subs, "`, `"))
	}
	list("publish allow", p.Publish.Allow)
	list("publish deny", p.Publish.Deny)
	list("subscribe allow", p.Subscribe.Allow)
	list("subscribe deny", p.Subscribe.Deny)
	b.WriteString("\n</details>\n")
}

func cell(items []string) string {
	if len(items) == 0 {
		return "—"
	}
	return strings.Join(items, ", ")
}
