package dispatcher

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
)

// announce publishes the start-up status the runbook checks first:
// otp_dlt_activation_status, otp_cutover_status and otp_config_health.
func (s *otpService) announce(ctx context.Context) error {
	health := s.set.Health()
	policies := s.policies()
	events := []*event.Event{
		event.New(source, event.OTPDLTActivationStatus{DLTEnabled: s.set.DLTEnabled, Source: s.set.DLTSource, Apps: len(s.set.Apps)}),
		event.New(source, event.OTPCutoverStatus{DLTEnabled: s.set.DLTEnabled, Apps: policies}),
		event.New(source, event.OTPConfigHealth{Healthy: len(health) == 0, Problems: health}),
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.bus.Publish(ctx, events...); err != nil {
		return fmt.Errorf("dispatcher: publish start-up status: %w", err)
	}
	s.log.Info("dlt activation status", "event", "otp_dlt_activation_status", "dltEnabled", s.set.DLTEnabled,
		"source", s.set.DLTSource, "apps", len(s.set.Apps), "demo", s.set.Demo)
	for _, p := range policies {
		s.log.Info("cutover status", "event", "otp_cutover_status", "app", p.App, "deliveryPolicy", p.DeliveryPolicy,
			"legacyRouteEnabled", p.LegacyRouteEnabled, "effectiveRoute", p.EffectiveRoute, "fallbackRoute", p.FallbackRoute,
			"providers", p.Providers)
	}
	if len(health) == 0 {
		s.log.Info("otp config healthy", "event", "otp_config_health", "healthy", true)
	}
	for _, p := range health {
		s.log.Warn("otp config problem", "event", "otp_config_health", "healthy", false, "app", p.App, "field", p.Field, "problem", p.Problem)
	}
	return nil
}

func (s *otpService) policies() []event.AppPolicy {
	out := make([]event.AppPolicy, 0, len(s.set.Apps))
	for _, name := range s.set.AppNames() {
		out = append(out, s.set.Apps[name].Policy(s.set.DLTEnabled))
	}
	return out
}

// platformApp is one row of GET /platform/otp.
type platformApp struct {
	event.AppPolicy
	TemplateID string `json:"templateId,omitempty"`
	SenderID   string `json:"senderId,omitempty"`
	CodeLength int    `json:"codeLength"`
	TTL        string `json:"ttl"`
	Healthy    bool   `json:"healthy"`
}

// platform serves GET /platform/otp: the delivery policy table, as JSON or,
// for Accept: text/plain, as an aligned table.
func (s *otpService) platform(w http.ResponseWriter, r *http.Request) {
	unhealthy := map[string]bool{}
	for _, p := range s.set.Health() {
		unhealthy[p.App] = true
	}
	rows := make([]platformApp, 0, len(s.set.Apps))
	for _, p := range s.policies() {
		a := s.set.Apps[p.App]
		rows = append(rows, platformApp{AppPolicy: p, TemplateID: a.DLT.TemplateID, SenderID: a.DLT.SenderID,
			CodeLength: a.CodeLength, TTL: a.TTL.D().String(), Healthy: !unhealthy[p.App]})
	}
	if strings.Contains(r.Header.Get("Accept"), "text/plain") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "OTP delivery policy (OTP_DLT_ENABLED=%v, from %s)\n\n", s.set.DLTEnabled, s.set.DLTSource)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "APP\tPOLICY\tLEGACY ROUTE\tROUTE\tFALLBACK\tPROVIDERS\tTEMPLATE ID\tSENDER\tHEALTHY")
		for _, a := range rows {
			fb := a.FallbackRoute
			if fb == "" {
				fb = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\t%v\n", a.App, a.DeliveryPolicy, a.LegacyRouteEnabled,
				a.EffectiveRoute, fb, strings.Join(a.Providers, ","), dash(a.TemplateID), dash(a.SenderID), a.Healthy)
		}
		_ = tw.Flush()
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"dltEnabled": s.set.DLTEnabled, "dltSource": s.set.DLTSource, "apps": rows})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
