package notifier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
)

// silenceRun is the notifier's running part of silences: changes are
// serialised, and the loop that announces what a window held when it ends
// is woken by every change.
type silenceRun struct {
	mu   sync.Mutex
	wake chan struct{}
}

func newSilenceRun() silenceRun { return silenceRun{wake: make(chan struct{}, 1)} }

func (n *Notifier) wakeSilences() {
	select {
	case n.silences.wake <- struct{}{}:
	default:
	}
}

// SilenceRequest is a silence to create (POST /v1/silences).
type SilenceRequest struct {
	Matchers []event.SilenceMatcher `json:"matchers"`
	// StartsAt defaults to now, and a time in the past is now: a silence
	// never holds what was decided before it existed.
	StartsAt time.Time `json:"startsAt,omitzero"`
	EndsAt   time.Time `json:"endsAt,omitzero"`
	// Duration is an alternative to EndsAt: StartsAt + Duration.
	Duration  string                 `json:"duration,omitempty"`
	Recurring *event.RecurringWindow `json:"recurring,omitempty"`
	CreatedBy string                 `json:"createdBy"`
	Comment   string                 `json:"comment,omitempty"`
}

func invalidSilence(format string, args ...any) error {
	return api.Errorf(http.StatusBadRequest, "invalid_silence", format, args...)
}

// silenceEvent checks a request and makes its silence_created.
func (n *Notifier) silenceEvent(req SilenceRequest, via string) (event.SilenceCreated, error) {
	var d event.SilenceCreated
	if req.CreatedBy == "" || len(req.CreatedBy) > 128 {
		return d, invalidSilence("createdBy: who creates the silence, 1 to 128 characters")
	}
	if len(req.Comment) > 1024 {
		return d, invalidSilence("comment: at most 1024 characters")
	}
	if _, err := compileSilence(req.Matchers, req.Recurring); err != nil {
		return d, invalidSilence("%v", err)
	}
	now := n.now().UTC()
	start := req.StartsAt.UTC()
	if start.Before(now) {
		start = now
	}
	end := req.EndsAt.UTC()
	if req.Duration != "" {
		dur, err := time.ParseDuration(req.Duration)
		switch {
		case !req.EndsAt.IsZero():
			return d, invalidSilence("give endsAt or duration, not both")
		case err != nil || dur <= 0:
			return d, invalidSilence("duration: %q is not a positive duration (2h, 90m)", req.Duration)
		}
		end = start.Add(dur)
	}
	switch {
	case end.IsZero() && req.Recurring == nil:
		return d, invalidSilence("endsAt (or duration): a silence needs an end; only a recurring window may go on")
	case !end.IsZero() && !end.After(start):
		return d, invalidSilence("endsAt: %s is not after the start, %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return event.SilenceCreated{SilenceID: "sil-" + hex.EncodeToString(id[:]), Matchers: req.Matchers, StartsAt: start,
		EndsAt: end, Recurring: req.Recurring, CreatedBy: req.CreatedBy, Comment: req.Comment, Via: via}, nil
}

// CreateSilence records a silence.
func (n *Notifier) CreateSilence(ctx context.Context, req SilenceRequest, via string) (*Silence, error) {
	d, err := n.silenceEvent(req, via)
	if err != nil {
		return nil, err
	}
	n.silences.mu.Lock()
	defer n.silences.mu.Unlock()
	e := event.New(source, d, event.WithSubject("notifications.silence_created."+d.SilenceID))
	if err := n.publish(ctx, e); err != nil {
		return nil, err
	}
	n.wakeSilences()
	return n.silence(d.SilenceID), nil
}

// ExpireSilence ends a silence now; it answers nil when there is none.
func (n *Notifier) ExpireSilence(ctx context.Context, id, via, by string) (*Silence, error) {
	n.silences.mu.Lock()
	defer n.silences.mu.Unlock()
	s := n.silence(id)
	if s == nil {
		return nil, nil
	}
	now := n.now().UTC()
	if s.Status == "expired" {
		return s, api.Errorf(http.StatusConflict, "silence_expired", "silence %s ended at %s", id, s.end().Format(time.RFC3339))
	}
	e := event.New(source, event.SilenceExpired{SilenceID: id, By: by, Via: via, At: now},
		event.WithSubject("notifications.silence_expired."+id))
	if err := n.publish(ctx, e); err != nil {
		return nil, err
	}
	n.wakeSilences()
	return n.silence(id), nil
}

func (n *Notifier) silence(id string) *Silence {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.state.Silences[id]
	if !ok {
		return nil
	}
	c := *s
	c.Status = s.status(n.now())
	return &c
}

// SilenceIncident silences one incident's notifications for d: a silence
// matching its rule and group (the root's "Silence 1 h" button).
func (n *Notifier) SilenceIncident(ctx context.Context, incidentID, by string, d time.Duration) error {
	n.mu.Lock()
	tl := n.state.Timelines[incidentID]
	var ms []event.SilenceMatcher
	if tl != nil {
		last := tl.Latest()
		ms = append(ms, event.SilenceMatcher{Name: "rule", Value: last.Rule})
		for _, k := range slices.Sorted(maps.Keys(last.Group)) {
			ms = append(ms, event.SilenceMatcher{Name: k, Value: last.Group[k]})
		}
	}
	n.mu.Unlock()
	if tl == nil {
		return fmt.Errorf("silence: no incident %s", incidentID)
	}
	_, err := n.CreateSilence(ctx, SilenceRequest{Matchers: ms, Duration: d.String(), CreatedBy: by,
		Comment: "Silence 1 h from the incident's Slack message (" + incidentID + ")"}, "slack")
	return err
}

// Silences lists the silences not yet expired (all: expired ones too).
func (n *Notifier) Silences(all bool) []Silence {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.listSilences(n.now(), all)
}

func (n *Notifier) silenceRoutes(maxBody int64) []api.Route {
	return []api.Route{
		{Pattern: "POST /v1/silences", Access: api.Operator, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req SilenceRequest
			if err := api.DecodeJSON(r, maxBody, &req); err != nil {
				api.WriteError(w, err)
				return
			}
			s, err := n.CreateSilence(r.Context(), req, viaOf(r))
			if err != nil {
				api.WriteError(w, err)
				return
			}
			api.WriteJSON(w, http.StatusCreated, map[string]any{"silence": s})
		})},
		{Pattern: "GET /v1/silences", Access: api.Operator, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.WriteJSON(w, http.StatusOK, map[string]any{"silences": n.Silences(r.URL.Query().Get("all") == "true")})
		})},
		{Pattern: "DELETE /v1/silences/{id}", Access: api.Operator, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := n.ExpireSilence(r.Context(), r.PathValue("id"), viaOf(r), r.URL.Query().Get("by"))
			switch {
			case err != nil:
				api.WriteError(w, err)
			case s == nil:
				api.WriteError(w, api.Errorf(http.StatusNotFound, "unknown_silence", "no silence %q", r.PathValue("id")))
			default:
				api.WriteJSON(w, http.StatusOK, map[string]any{"silence": s, "expired": true})
			}
		})},
	}
}

// viaOf says whether a request comes from herald silences (which names
// itself in its User-Agent) or another API client.
func viaOf(r *http.Request) string {
	if strings.HasPrefix(r.UserAgent(), SilencesCLIAgent) {
		return "cli"
	}
	return "api"
}

// SilencesCLIAgent is the User-Agent of herald silences.
const SilencesCLIAgent = "herald-silences"

// holdRouted applies the silences to a routing decision: the destinations
// a silence holds the transition from are taken out (with their match) and
// returned as the notification_suppressed entries to write.
func (s *State) holdRouted(t *Transition, dests []string, matches []event.RouteMatch) ([]string, []event.RouteMatch, []event.NotificationSuppressed) {
	send, held := s.hold(t, dests)
	if len(held) == 0 {
		return dests, matches, nil
	}
	kept := map[string]bool{}
	for _, d := range send {
		kept[d] = true
	}
	var ms []event.RouteMatch
	for _, m := range matches {
		if kept[m.Destination] {
			ms = append(ms, m)
		}
	}
	return send, ms, held
}

// recordHeld writes the notification_suppressed entries of a routing
// decision, before the decision itself: a crash in between routes the
// transition again, to the same decision (write-once subjects).
func (n *Notifier) recordHeld(ctx context.Context, held []event.NotificationSuppressed, cause string) error {
	for _, h := range held {
		subj := ledgerSubject("notification_suppressed", h.IncidentID, h.Transition, h.Destination)
		stored, err := n.writeOnce(ctx, ledgerEvent(h, subj, cause))
		if err != nil {
			return err
		}
		n.apply(stored)
	}
	if len(held) > 0 {
		n.log.Info("notification held by a silence", "incident", held[0].IncidentID, "transition", held[0].Transition,
			"destinations", len(held), "silence", held[0].SilenceID)
		n.wakeSilences() // its window may have ended already (a transition routed late)
	}
	return nil
}

// runSilences announces, each time a silence stops holding, the open
// incidents it held: until ctx ends, it sweeps at every silence's start
// and end, and whenever a silence or a held notification is recorded.
func (n *Notifier) runSilences(ctx context.Context) {
	for {
		wait := time.Duration(-1)
		if err := n.sweepSilences(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.Warn("announcing what a silence held failed; retrying", "error", err)
			wait = time.Second
		}
		if wait < 0 {
			n.mu.Lock()
			next := n.state.nextSilenceChange(n.now())
			n.mu.Unlock()
			if !next.IsZero() {
				wait = max(time.Until(next), 0)
			}
		}
		var (
			timer *time.Timer
			tick  <-chan time.Time
		)
		if wait >= 0 {
			timer = time.NewTimer(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
		case <-n.silences.wake:
		case <-tick:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// sweepSilences writes the announcements owed now (State.releases), each
// as a routing entry of the incident's latest transition on its own
// write-once subject, notifications.notification_routed.<incident>.<transition>.released,
// so that a restart never announces twice.
func (n *Notifier) sweepSilences(ctx context.Context) error {
	n.mu.Lock()
	rel := n.state.releases(n.now())
	causes := make([]string, len(rel))
	for i, r := range rel {
		causes[i] = n.state.Timelines[r.IncidentID].Latest().EventID
	}
	n.mu.Unlock()
	for i, r := range rel {
		stored, err := n.writeOnce(ctx, ledgerEvent(r, ledgerSubject("notification_routed", r.IncidentID, r.Transition, "released"), causes[i]))
		if err != nil {
			return fmt.Errorf("silence ended: %w", err)
		}
		n.apply(stored)
		n.log.Info("silence ended: announcing an incident it held", "incident", r.IncidentID, "transition", r.Transition,
			"destinations", strings.Join(r.Destinations, ","))
		n.mu.Lock()
		lanes := append([]*Lane(nil), n.state.LanesOf(r.IncidentID)...)
		n.mu.Unlock()
		for _, l := range lanes {
			n.kick(l)
		}
	}
	return nil
}

// startSilences runs the loop of runSilences for the active term.
func (n *Notifier) startSilences(ctx context.Context) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.runSilences(ctx)
	}()
}

// silenceCommand runs /herald silence: create (matchers, "for", a
// duration, then the comment), list, or expire.
func (n *Notifier) silenceCommand(r *http.Request, user string, args []string) (string, bool) {
	if len(args) == 0 || args[0] == "list" {
		ss := n.Silences(false)
		if len(ss) == 0 {
			return "No silences.", false
		}
		var b strings.Builder
		b.WriteString("Silences:\n")
		for _, s := range ss {
			fmt.Fprintf(&b, "• `%s` %s %s, %s — by %s%s\n", s.ID, escape(MatcherString(s.Matchers)), s.Status,
				silenceWindow(&s), escape(s.CreatedBy), commentText(s.Comment))
		}
		return b.String(), false
	}
	if args[0] == "expire" {
		if len(args) != 2 {
			return "Usage: `/herald silence expire sil-…` (`/herald silence list` lists them)", false
		}
		s, err := n.ExpireSilence(r.Context(), args[1], "slack", user)
		switch {
		case err != nil:
			return "Not expired: " + errorText(err), false
		case s == nil:
			return fmt.Sprintf("No silence %q; `/herald silence list` lists them.", args[1]), false
		}
		return fmt.Sprintf("<@%s> ended the silence `%s` (%s); incidents it held that are still open are announced now.",
			user, s.ID, escape(MatcherString(s.Matchers))), true
	}
	var matchers []string
	i := 0
	for ; i < len(args) && args[i] != "for"; i++ {
		matchers = append(matchers, args[i])
	}
	if i+1 >= len(args) {
		return "Not silenced: say for how long, e.g. `/herald silence provider=fast2sms for 2h Fast2SMS maintenance`.\n" + slashUsage, false
	}
	ms, err := ParseMatchers(matchers)
	if err != nil {
		return "Not silenced: " + err.Error() + "\n" + slashUsage, false
	}
	s, err := n.CreateSilence(r.Context(), SilenceRequest{Matchers: ms, Duration: args[i+1], CreatedBy: user,
		Comment: strings.Join(args[i+2:], " ")}, "slack")
	if err != nil {
		return "Not silenced: " + errorText(err), false
	}
	return fmt.Sprintf("<@%s> silenced %s until %s (`%s`)%s. Its notifications are held and recorded; "+
		"incidents still open when it ends are announced then.", user, escape(MatcherString(s.Matchers)), clock(s.EndsAt),
		s.ID, commentText(s.Comment)), true
}

// silenceWindow says when a silence holds, for people.
func silenceWindow(s *Silence) string {
	w := "from " + clock(s.StartsAt)
	if !s.end().IsZero() {
		w += " until " + clock(s.end())
	}
	if rw := s.Recurring; rw != nil {
		w = fmt.Sprintf("every %s at %s for %s (%s), %s", strings.Join(rw.Days, ","), rw.Start, rw.Duration, rw.TimeZone, w)
	}
	return w
}

func commentText(c string) string {
	if c == "" {
		return ""
	}
	return ": " + escape(c)
}
