// Package provideradapter is Herald's provider-adapter service: it consumes dispatch events, calls the SMS providers and records each outcome.
package provideradapter

import "go.uber.org/fx"

// Module is the provider-adapter service.
var Module = fx.Module("provider-adapter")
