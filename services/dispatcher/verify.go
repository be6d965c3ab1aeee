package dispatcher

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
)

type verifyRequest struct {
	RequestID string `json:"requestId"`
	Code      string `json:"code"`
}

var (
	requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{7,63}$`)
	codePattern      = regexp.MustCompile(`^[0-9]{4,10}$`)
)

// verify serves POST /v1/otp/verify: 200 once for the right code; 400
// invalid_code with the attempts left; 410 expired, revoked or used; 429
// once the attempts are spent; 404 for an unknown request id.
func (s *otpService) verify(w http.ResponseWriter, r *http.Request) {
	req, err := s.parseVerify(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	ctx := r.Context()
	rec, outcome, err := s.check(ctx, req)
	if errors.Is(err, errNotFound) {
		s.metrics.verifies.WithLabelValues("unknown", "not_found").Inc()
		api.WriteError(w, api.Errorf(http.StatusNotFound, "not_found", "no OTP with this requestId (never issued, or expired long ago)"))
		return
	}
	if err != nil {
		s.log.Error("verify failed", "requestId", req.RequestID, "error", err)
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "unavailable", "the OTP store did not answer; try again"))
		return
	}
	if outcome == "forbidden" {
		api.WriteError(w, api.AllowApp(ctx, rec.App))
		return
	}
	left := max(rec.MaxAttempts-rec.Attempts, 0)
	s.recordVerification(ctx, req.RequestID, rec, outcome, left)
	writeVerification(w, req.RequestID, outcome, left)
}

// parseVerify decodes and validates a verify request.
func (s *otpService) parseVerify(r *http.Request) (verifyRequest, error) {
	var req verifyRequest
	if err := api.DecodeJSON(r, s.maxBody, &req); err != nil {
		return req, err
	}
	if !requestIDPattern.MatchString(req.RequestID) {
		return req, api.Errorf(http.StatusBadRequest, "invalid_request", "requestId is required: the id POST /v1/otp/send answered")
	}
	if !codePattern.MatchString(req.Code) {
		return req, api.Errorf(http.StatusBadRequest, "invalid_request", "code must be 4 to 10 digits")
	}
	return req, nil
}

// check compares the code with the stored hash and counts the attempt, with
// compare-and-set. The outcome is one of verified, invalid_code, expired,
// revoked, used, too_many_attempts or forbidden.
func (s *otpService) check(ctx context.Context, req verifyRequest) (codeRecord, string, error) {
	var outcome string
	now := time.Now()
	caller := api.CallerFrom(ctx)
	rec, _, err := s.codes.update(ctx, req.RequestID, func(c *codeRecord) bool {
		switch {
		case !caller.MayApp(c.App):
			// Checked before anything counts: another app's key spends no attempt.
			outcome = "forbidden"
		case c.State == stateUsed:
			outcome = "used"
		case c.State == stateRevoked:
			outcome = "revoked"
		case now.After(c.ExpiresAt):
			outcome = "expired"
		case c.Attempts >= c.MaxAttempts:
			outcome = "too_many_attempts"
		case s.set.Keys.Match(req.RequestID, req.Code, c.HashKeyID, c.Hash):
			c.Attempts++
			c.State, outcome = stateUsed, "verified"
			return true
		default:
			c.Attempts++
			outcome = "invalid_code"
			return true
		}
		return false
	})
	return rec, outcome, err
}

// recordVerification counts, logs and publishes a verification's outcome.
func (s *otpService) recordVerification(ctx context.Context, requestID string, rec codeRecord, outcome string, left int) {
	s.metrics.verifies.WithLabelValues(rec.App, outcome).Inc()
	log := s.log.With("requestId", requestID, "app", rec.App)
	var ev event.Data
	if outcome == "verified" {
		ev = event.OTPVerified{App: rec.App, Attempts: rec.Attempts}
		log.Info("otp verified", "event", "otp_verified", "attempts", rec.Attempts)
	} else {
		ev = event.OTPVerificationFailed{App: rec.App, Reason: outcome, AttemptsLeft: left}
		log.Info("otp verification failed", "event", "otp_verification_failed", "reason", outcome, "attemptsLeft", left)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if _, err := s.bus.Publish(pctx, event.New(source, ev, event.WithRequestID(requestID))); err != nil {
		log.Error("verification event not recorded", "error", err)
	}
	cancel()
}

// writeVerification answers a verification's outcome.
func writeVerification(w http.ResponseWriter, requestID, outcome string, left int) {
	switch outcome {
	case "verified":
		api.WriteJSON(w, http.StatusOK, map[string]any{"verified": true, "requestId": requestID})
	case "invalid_code":
		api.WriteError(w, &api.Error{Status: http.StatusBadRequest, Code: "invalid_code", Detail: "the code is wrong",
			Extra: map[string]any{"attemptsLeft": left}})
	case "too_many_attempts":
		api.WriteError(w, &api.Error{Status: http.StatusTooManyRequests, Code: "too_many_attempts",
			Detail: "no verification attempts left; send a new code", Extra: map[string]any{"attemptsLeft": 0}})
	default:
		api.WriteError(w, api.Errorf(http.StatusGone, outcome, "this code is %s; send a new one", map[string]string{
			"expired": "expired", "revoked": "revoked (its delivery failed or it was withdrawn)", "used": "already used"}[outcome]))
	}
}
