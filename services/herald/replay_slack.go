package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald/services/notifier"
)

// replaySlack rebuilds the notifier's projection (herald replay
// --projection slack) and prints it. It reads INCIDENTS and NOTIFICATIONS
// only: nothing is posted or published.
func replaySlack(ctx context.Context, e *env, cf *clientFlags, asJSON bool) error {
	b, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer closeBus(b)
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	start := time.Now()
	st, err := notifier.Rebuild(ctx, b, nil)
	if err != nil {
		return err
	}
	r := st.Report()
	if asJSON {
		out, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintln(e.stdout, string(out))
		return nil
	}
	fmt.Fprintf(e.stdout, "slack projection rebuilt from INCIDENTS and NOTIFICATIONS in %s; nothing was posted\n",
		time.Since(start).Round(time.Millisecond))
	r.Write(e.stdout)
	return nil
}
