package app

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// newBuildInfo registers herald_build_info: a gauge of 1 whose labels say which
// build runs (prometheus/common/version's <program>_build_info convention),
// read from the binary's own build information: the module's version, the
// VCS revision ("-modified" when the tree was dirty) and the Go version.
// (client_golang's NewBuildInfoCollector names its metric go_build_info.)
func newBuildInfo(reg prometheus.Registerer) {
	version, revision, goversion := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		goversion = bi.GoVersion
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && revision != "unknown" {
			revision += "-modified"
		}
	}
	promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name:        "herald_build_info",
		Help:        "A metric with a constant '1' value labeled by version, revision and goversion from which herald was built.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goversion},
	}).Set(1)
}
