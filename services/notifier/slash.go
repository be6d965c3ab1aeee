package notifier

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/heraldhq/herald/pkg/api"
)

const slashUsage = "Usage:\n" +
	"• `/herald subscribe app=shop severity>=P2` — this channel gets the incidents matching the filter " +
	"(filters: app, provider, route, integration, rule, severity with =, >=, <=, >, <)\n" +
	"• `/herald unsubscribe app=shop severity>=P2` (or a subscription id, or `all`)\n" +
	"• `/herald subscriptions` — this channel's subscriptions\n" +
	"• `/herald incidents` — the open incidents\n" +
	"• `/herald silence provider=fast2sms for 2h Fast2SMS maintenance` — hold the matching incidents' notifications " +
	"(matchers: rule, app, provider, route, integration, severity with = or =~regex); " +
	"`/herald silence list`, `/herald silence expire sil-…`"

// slashCommand serves Slack's slash command requests. A request whose
// signature is missing, wrong or older than 5 minutes gets 401 and changes
// nothing. Everything else gets 200 with a message, as Slack shows only
// those: a usage mistake is explained to the user who typed it.
func (n *Notifier) slashCommand(w http.ResponseWriter, r *http.Request, maxBody int64) {
	body, ok := n.verifiedSlackBody(w, r, maxBody, "slash command")
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_form", "the body is not a form: %v", err))
		return
	}
	if form.Get("ssl_check") == "1" {
		w.WriteHeader(http.StatusOK)
		return
	}
	text, inChannel := n.runCommand(r, form)
	kind := "ephemeral"
	if inChannel {
		kind = "in_channel"
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"response_type": kind, "text": text})
}

// runCommand runs one command and says what happened; inChannel answers
// are shown to the whole channel (a subscription change concerns everyone).
func (n *Notifier) runCommand(r *http.Request, form url.Values) (string, bool) {
	channel, user := form.Get("channel_id"), form.Get("user_id")
	args := strings.Fields(form.Get("text"))
	if len(args) == 0 {
		return slashUsage, false
	}
	switch strings.ToLower(args[0]) {
	case "subscribe":
		m, err := ParseFilter(args[1:])
		if err != nil {
			return "Not subscribed: " + err.Error() + "\n" + slashUsage, false
		}
		s, created, err := n.Subscribe(r.Context(), channel, m, "slack", user)
		if err != nil {
			return "Not subscribed: " + errorText(err), false
		}
		if !created {
			return fmt.Sprintf("This channel already gets %s (`%s`).", s.Filter, s.ID), false
		}
		return fmt.Sprintf("<@%s> subscribed this channel to %s (`%s`).", user, s.Filter, s.ID), true
	case "unsubscribe":
		return n.unsubscribeCommand(r, channel, user, args[1:])
	case "subscriptions", "list":
		subs := n.Subscriptions(channel)
		if len(subs) == 0 {
			return "This channel has no subscriptions.", false
		}
		var b strings.Builder
		b.WriteString("This channel gets:\n")
		for _, s := range subs {
			fmt.Fprintf(&b, "• %s (`%s`)\n", s.Filter, s.ID)
		}
		return b.String(), false
	case "incidents":
		open := n.openIncidents()
		if len(open) == 0 {
			return "No open incidents.", false
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d open incident(s):\n", len(open))
		for i, s := range open {
			if i == 20 {
				fmt.Fprintf(&b, "… and %d more\n", len(open)-i)
				break
			}
			fmt.Fprintf(&b, "• %s *%s* %s — %s — since %s — `%s`\n", severityIcon(s), s.Severity, escape(s.Rule),
				escape(orNone(groupString(s.Group))), clock(s.OpenedAt), s.IncidentID)
		}
		return b.String(), false
	case "silence", "silences":
		return n.silenceCommand(r, user, args[1:])
	case "help":
		return slashUsage, false
	}
	return fmt.Sprintf("Unknown command %q.\n%s", args[0], slashUsage), false
}

func (n *Notifier) unsubscribeCommand(r *http.Request, channel, user string, args []string) (string, bool) {
	var ids []string
	switch {
	case len(args) == 1 && args[0] == "all":
		for _, s := range n.Subscriptions(channel) {
			ids = append(ids, s.ID)
		}
	case len(args) == 1 && strings.HasPrefix(args[0], "sub-"):
		ids = []string{args[0]}
	default:
		m, err := ParseFilter(args)
		if err != nil {
			return "Not unsubscribed: " + err.Error() + "\n" + slashUsage, false
		}
		ids = []string{SubscriptionID(channel, m)}
	}
	var removed []string
	for _, id := range ids {
		s := n.subscription(id)
		if s == nil || s.Channel != channel {
			continue // another channel's subscription is not this channel's to end
		}
		if _, err := n.Unsubscribe(r.Context(), id, "slack", user); err != nil {
			return "Not unsubscribed: " + errorText(err), false
		}
		removed = append(removed, fmt.Sprintf("%s (`%s`)", s.Filter, s.ID))
	}
	if len(removed) == 0 {
		return "This channel has no such subscription; `/herald subscriptions` lists them.", false
	}
	return fmt.Sprintf("<@%s> unsubscribed this channel from %s.", user, strings.Join(removed, ", ")), true
}

func errorText(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Detail
	}
	return err.Error()
}
