// Package notifier is Herald's notifier service: it projects incident transitions onto Slack.
package notifier

import "go.uber.org/fx"

// Module is the notifier service.
var Module = fx.Module("notifier")
