package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func TestSilencesCommands(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("notifier"))
	code, out, errOut := cli(t, "", "silences", "add", "provider=fast2sms", "app=~shop|bank", "--for", "2h", "--by", "ana",
		"--comment", "Fast2SMS maintenance", "--url", a.URL)
	if code != exitOK || !strings.HasPrefix(out, "sil-") || !strings.Contains(out, "active  provider=fast2sms app=~shop|bank") {
		t.Fatalf("add: exit %d, %s %s", code, out, errOut)
	}
	id := strings.Fields(out)[0]
	code, out, errOut = cli(t, "", "silences", "add", "--every", "sat,sun", "--at", "22:00", "--lasting", "4h",
		"--tz", "Europe/Berlin", "--by", "ana", "rule=otp-failure-rate", "--url", a.URL)
	if code != exitOK {
		t.Fatalf("add a weekly window: exit %d, %s %s", code, out, errOut)
	}
	code, out, _ = cli(t, "", "silences", "list", "--url", a.URL)
	if code != exitOK || !strings.Contains(out, id) || !strings.Contains(out, "sat,sun 22:00 +4h Europe/Berlin") ||
		!strings.Contains(out, "Fast2SMS maintenance") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	if code, out, errOut := cli(t, "", "silences", "expire", id, "--by", "bob", "--url", a.URL); code != exitOK || !strings.Contains(out, "expired") {
		t.Errorf("expire: exit %d, %s %s", code, out, errOut)
	}
	if code, _, errOut := cli(t, "", "silences", "expire", id, "--url", a.URL); code != exitUsage || !strings.Contains(errOut, "409 silence_expired") {
		t.Errorf("expire again: exit %d, %s", code, errOut)
	}
	code, out, _ = cli(t, "", "silences", "list", "--all", "--json", "--url", a.URL)
	var s struct{ ID, Status, Via, ExpiredBy string }
	if code != exitOK || json.Unmarshal([]byte(strings.Split(strings.TrimSpace(out), "\n")[0]), &s) != nil {
		t.Fatalf("list --all --json: exit %d\n%s", code, out)
	}
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, `"status":"expired"`) || !strings.Contains(out, `"via":"cli"`) ||
		!strings.Contains(out, `"expiredBy":"bob"`) {
		t.Errorf("list --all --json:\n%s", out)
	}
	for _, bad := range [][]string{
		{"silences", "add", "colour=red", "--for", "1h"},
		{"silences", "add", "app=shop"},
		{"silences", "add", "app=shop", "--until", "tomorrow"},
	} {
		if code, _, errOut := cli(t, "", append(bad, "--url", a.URL)...); code != exitUsage {
			t.Errorf("%v: exit %d, %s", bad, code, errOut)
		}
	}
}
