package deploy_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestContainerfileRunsHeraldAsNonRoot checks the image definition's shape
// (there is no container engine to build it here): a build stage that
// compiles the herald command, a final stage without a shell that runs it as
// a non-root user, at the path the Kubernetes manifests start.
func TestContainerfileRunsHeraldAsNonRoot(t *testing.T) {
	b, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	var entrypoint []string
	var buildsHerald, copiesBinary bool
	for _, line := range strings.Split(string(b), "\n") {
		instr, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch instr {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			users = append(users, rest)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s is not the exec (JSON) form: %v", rest, err)
			}
		case "RUN":
			buildsHerald = buildsHerald || strings.Contains(rest, "go build") && strings.Contains(rest, "./services/herald")
		case "COPY":
			copiesBinary = copiesBinary || strings.HasPrefix(rest, "--from=build ") && strings.HasSuffix(rest, " /usr/local/bin/herald")
		}
	}
	if len(froms) != 2 || !strings.HasSuffix(froms[0], " AS build") || !strings.HasPrefix(froms[1], "gcr.io/distroless/") {
		t.Errorf("stages %q, want a build stage and a distroless runtime", froms)
	}
	if _, err := os.Stat("../services/herald"); err != nil || !buildsHerald || !copiesBinary {
		t.Errorf("the build stage must compile ./services/herald and the runtime copy it to /usr/local/bin/herald")
	}
	if len(users) != 1 || strings.HasPrefix(users[0], "0") || strings.HasPrefix(users[0], "root") {
		t.Errorf("USER %q, want one non-root user", users)
	}
	if len(entrypoint) != 1 || entrypoint[0] != "/usr/local/bin/herald" {
		t.Errorf("ENTRYPOINT %q, want [/usr/local/bin/herald]", entrypoint)
	}
}
