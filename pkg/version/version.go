// Package version says which build of Herald runs, from the binary's own
// build information (runtime/debug): the module's version, the VCS
// revision and time, and the Go version. `herald version` prints it and
// herald_build_info exports it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is one build's identity; unknown parts are "unknown".
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Time      string `json:"time,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Read reads the running binary's build information. A revision built
// from a tree with uncommitted changes ends in "-modified".
func Read() Info {
	in := Info{Version: "unknown", Revision: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && in.Revision != "unknown" {
		in.Revision += "-modified"
	}
	return in
}

// String is the one-line form: "herald v1.2.3 (revision abc…, go1.26.8 linux/amd64)".
func (in Info) String() string {
	s := fmt.Sprintf("herald %s (revision %s", in.Version, in.Revision)
	if in.Time != "" {
		s += ", committed " + in.Time
	}
	return s + ", " + in.GoVersion + " " + in.Platform + ")"
}
