// Package incident is Herald's incident service: it folds the event log through the alerting rules into incidents.
package incident

import "go.uber.org/fx"

// Module is the incident service.
var Module = fx.Module("incident")
