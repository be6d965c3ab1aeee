package incidents

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/access"
)

// rebuildTimeout bounds the rebuild a request starts (the reply says it
// started; the fold itself runs in the background).
const rebuildTimeout = 30 * time.Second

// RebuildAnswer is the reply to a rebuild request on access.IncidentRebuild.
type RebuildAnswer struct {
	Rebuilding bool   `json:"rebuilding"`
	FromSeq    uint64 `json:"fromSeq,omitempty"`
	Error      string `json:"error,omitempty"`
}

// serveControl answers operators' requests over NATS (herald incidents
// rebuild). Every process listens; only the active writer answers, so a
// request reaches the one projection that publishes, and a standby stays
// silent (the requester times out when there is no writer).
func (s *Service) serveControl() (*nats.Subscription, error) {
	return s.b.NC.Subscribe(access.IncidentRebuild, func(m *nats.Msg) {
		if !s.Active() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), rebuildTimeout)
		defer cancel()
		ans := RebuildAnswer{Rebuilding: true, FromSeq: 1}
		if err := s.Rebuild(ctx); err != nil {
			ans = RebuildAnswer{Error: err.Error()}
		}
		b, _ := json.Marshal(ans)
		if err := m.Respond(b); err != nil {
			s.log.Warn("answering a rebuild request failed", "error", err)
		}
	})
}
