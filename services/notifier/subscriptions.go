package notifier

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
)

// Routes are the notifier's HTTP endpoints.
func (n *Notifier) Routes(maxBody int64) []api.Route {
	return append([]api.Route{
		{Pattern: "POST /v1/subscriptions", Access: api.Operator, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.postSubscription(w, r, maxBody) })},
		{Pattern: "GET /v1/subscriptions", Access: api.Operator, Handler: http.HandlerFunc(n.listSubscriptions)},
		{Pattern: "DELETE /v1/subscriptions/{id}", Access: api.Operator, Handler: http.HandlerFunc(n.deleteSubscription)},
		{Pattern: "POST /v1/slack/commands", Access: api.Signed, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.slashCommand(w, r, maxBody) })},
		{Pattern: "POST /v1/slack/interactions", Access: api.Signed, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.slackInteraction(w, r, maxBody) })},
		{Pattern: "GET /v1/incidents/{id}/notifications", Access: api.Operator, Handler: http.HandlerFunc(n.incidentMessages)},
		{Pattern: "POST /v1/incidents/{id}/ack", Access: api.Operator, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.postAck(w, r, maxBody) })},
	}, n.silenceRoutes(maxBody)...)
}

const publishTimeout = 5 * time.Second

// Subscribe records a channel's subscription (once: subscribing again to
// the same filter answers the existing one, created false).
func (n *Notifier) Subscribe(ctx context.Context, channel string, m event.SubscriptionMatch, via, by string) (*Subscription, bool, error) {
	if !channelPattern.MatchString(channel) {
		return nil, false, api.Errorf(http.StatusBadRequest, "invalid_channel",
			"channel %q is not a Slack channel id (C0123…), a #channel-name or console", channel)
	}
	if err := CheckMatch(m); err != nil {
		return nil, false, api.Errorf(http.StatusBadRequest, "invalid_match", "match.%v", err)
	}
	id := SubscriptionID(channel, m)
	n.subMu.Lock()
	defer n.subMu.Unlock()
	if s := n.subscription(id); s != nil {
		return s, false, nil
	}
	e := event.New(source, event.SubscriptionCreated{SubscriptionID: id, Channel: channel, Match: m, Via: via, By: by},
		event.WithSubject("notifications.subscription_created."+id))
	if err := n.publish(ctx, e); err != nil {
		return nil, false, err
	}
	return n.subscription(id), true, nil
}

// Unsubscribe ends a subscription; it answers nil when there was none.
func (n *Notifier) Unsubscribe(ctx context.Context, id, via, by string) (*Subscription, error) {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	s := n.subscription(id)
	if s == nil {
		return nil, nil
	}
	e := event.New(source, event.SubscriptionRemoved{SubscriptionID: id, Channel: s.Channel, Via: via, By: by},
		event.WithSubject("notifications.subscription_removed."+id))
	return s, n.publish(ctx, e)
}

func (n *Notifier) publish(ctx context.Context, e *event.Event) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := n.bus.Publish(ctx, e); err != nil {
		return &api.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Detail: fmt.Sprintf("the event log did not confirm the change (%v); nothing changed, try again", err)}
	}
	n.apply(e)
	return nil
}

func (n *Notifier) subscription(id string) *Subscription {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s, ok := n.state.Subscriptions[id]; ok {
		c := *s
		return &c
	}
	return nil
}

// Subscriptions lists the active subscriptions, optionally of one channel.
func (n *Notifier) Subscriptions(channel string) []Subscription {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := []Subscription{}
	for _, s := range n.state.Subscriptions {
		if channel == "" || s.Channel == channel {
			out = append(out, *s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Channel != out[j].Channel {
			return out[i].Channel < out[j].Channel
		}
		return out[i].Filter < out[j].Filter
	})
	return out
}

type subscriptionRequest struct {
	Channel string                  `json:"channel"`
	Match   event.SubscriptionMatch `json:"match"`
	By      string                  `json:"by"`
}

func (n *Notifier) postSubscription(w http.ResponseWriter, r *http.Request, maxBody int64) {
	var req subscriptionRequest
	if err := api.DecodeJSON(r, maxBody, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	if len(req.By) > 128 {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_by", "by is at most 128 characters"))
		return
	}
	s, created, err := n.Subscribe(r.Context(), req.Channel, req.Match, "api", req.By)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	api.WriteJSON(w, status, map[string]any{"subscription": s, "created": created})
}

func (n *Notifier) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, map[string]any{"subscriptions": n.Subscriptions(r.URL.Query().Get("channel"))})
}

func (n *Notifier) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	s, err := n.Unsubscribe(r.Context(), r.PathValue("id"), "api", r.URL.Query().Get("by"))
	switch {
	case err != nil:
		api.WriteError(w, err)
	case s == nil:
		api.WriteError(w, api.Errorf(http.StatusNotFound, "unknown_subscription", "no active subscription %q", r.PathValue("id")))
	default:
		api.WriteJSON(w, http.StatusOK, map[string]any{"subscription": s, "removed": true})
	}
}
