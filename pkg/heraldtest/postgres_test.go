package heraldtest

import (
	"context"
	"testing"
	"time"
)

// Two servers at once each keep their own row.
func TestStartPostgres(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conn := StartPostgres(t).Conn(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, "CREATE TABLE t (name text PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "INSERT INTO t VALUES ($1)", name); err != nil {
				t.Fatal(err)
			}
			var got []string
			rows, err := conn.Query(ctx, "SELECT name FROM t")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				got = append(got, n)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != name {
				t.Fatalf("rows %q, want [%q]", got, name)
			}
		})
	}
}
