package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/heraldhq/herald/pkg/version"
)

// newBuildInfo registers herald_build_info: a gauge of 1 whose labels say which
// build runs (prometheus/common/version's <program>_build_info convention),
// read from the binary's own build information (pkg/version).
// (client_golang's NewBuildInfoCollector names its metric go_build_info.)
func newBuildInfo(reg prometheus.Registerer) {
	in := version.Read()
	promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name:        "herald_build_info",
		Help:        "A metric with a constant '1' value labeled by version, revision and goversion from which herald was built.",
		ConstLabels: prometheus.Labels{"version": in.Version, "revision": in.Revision, "goversion": in.GoVersion},
	}).Set(1)
}
