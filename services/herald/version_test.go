package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersionAndTheVersionFlagPrintTheBuild(t *testing.T) {
	code, out, errOut := cli(t, "", "version")
	if code != exitOK || !strings.HasPrefix(out, "herald ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("version: exit %d, %q %q", code, out, errOut)
	}
	if code, flag, _ := cli(t, "", "--version"); code != exitOK || flag != out {
		t.Errorf("--version: exit %d, %q, want %q", code, flag, out)
	}
	code, out, _ = cli(t, "", "version", "--json")
	var in map[string]string
	if err := json.Unmarshal([]byte(out), &in); code != exitOK || err != nil {
		t.Fatalf("version --json: exit %d, %v: %q", code, err, out)
	}
	for _, k := range []string{"version", "revision", "goVersion", "platform"} {
		if in[k] == "" {
			t.Errorf("version --json has no %s: %q", k, out)
		}
	}
}
