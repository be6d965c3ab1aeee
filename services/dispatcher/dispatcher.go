// Package dispatcher issues and verifies OTPs (POST /v1/otp/send,
// POST /v1/otp/verify, GET /platform/otp): it seals each code to its
// delivery plan and hands it to the provider adapter through the log.
// Producers' other events come in through services/ingest.
package dispatcher

import (
	"go.uber.org/fx"

	"github.com/heraldhq/herald/pkg/api"
)

// Module is the dispatcher service.
var Module = fx.Module("dispatcher",
	fx.Provide(newOTPService),
	fx.Provide(fx.Annotate(func(o *otpService) []api.Route { return o.routes() }, fx.ResultTags(`group:"routes,flatten"`))),
)
