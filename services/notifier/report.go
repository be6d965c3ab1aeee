package notifier

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// Report summarises the projection: what `herald replay --projection slack` prints.
type Report struct {
	Incidents     int            `json:"incidents"`
	Open          int            `json:"open"`
	Posted        int            `json:"posted"`
	Updated       int            `json:"updated"`
	Failed        int            `json:"failed"`
	Deleted       int            `json:"deleted"`
	Pending       int            `json:"pending"`
	Unrouted      []string       `json:"unrouted"`
	Lanes         []LaneReport   `json:"lanes"`
	Subscriptions []Subscription `json:"subscriptions"`
	// Silences (their status as of the report) and the notifications
	// they held: "<incident>/<transition>/<destination> by <silence>".
	Silences   []Silence `json:"silences"`
	Suppressed []string  `json:"suppressed"`
	// Acks are the incidents' acknowledgements, by incident.
	Acks map[string]Ack `json:"acknowledgements"`
}

// LaneReport is one incident in one destination, with its next step.
type LaneReport struct {
	Lane
	Shows string `json:"shows,omitempty"`
	Next  string `json:"next,omitempty"`
}

// Report computes the summary. Lanes not yet rooted are assumed to go to
// the Web API when their destination is a Slack channel.
func (s *State) Report() Report {
	r := Report{Incidents: len(s.Timelines), Posted: s.Posted, Updated: s.Updated, Failed: s.Failed, Deleted: s.Deleted,
		Unrouted: []string{}, Lanes: []LaneReport{}, Subscriptions: []Subscription{}, Acks: map[string]Ack{}}
	for id, a := range s.Acks {
		r.Acks[id] = *a
	}
	for id, i := range s.Timelines {
		if i.Latest().State == event.StateOpen {
			r.Open++
		}
		for _, t := range i.Transitions {
			if !s.IsRouted(id, t.Transition) {
				r.Unrouted = append(r.Unrouted, id+"/"+t.Transition)
			}
		}
	}
	sort.Strings(r.Unrouted)
	for _, l := range s.Lanes {
		lr := LaneReport{Lane: *l}
		if i := s.Timelines[l.Incident]; i != nil && l.Rendered >= 0 {
			lr.Shows = i.At(l.Rendered).Transition
		}
		caps := Caps{}
		if channelPattern.MatchString(l.Dest) && l.Dest != "console" {
			caps = Caps{Edit: true, Thread: true}
		}
		if st := s.Next(l, caps); st != nil {
			lr.Next = st.Kind + " " + st.Key
			if _, ok := l.Attempts[attemptKey(st.Kind, st.Key)]; ok {
				lr.Next += " (in doubt: looked up in Slack first)"
			}
			r.Pending++
		}
		r.Lanes = append(r.Lanes, lr)
	}
	sort.Slice(r.Lanes, func(a, b int) bool {
		if r.Lanes[a].Incident != r.Lanes[b].Incident {
			return r.Lanes[a].Incident < r.Lanes[b].Incident
		}
		return r.Lanes[a].Dest < r.Lanes[b].Dest
	})
	for _, sub := range s.Subscriptions {
		r.Subscriptions = append(r.Subscriptions, *sub)
	}
	sort.Slice(r.Subscriptions, func(a, b int) bool { return r.Subscriptions[a].ID < r.Subscriptions[b].ID })
	r.Silences, r.Suppressed = s.listSilences(time.Now(), true), s.Suppressions()
	return r
}

// Write prints the report for people.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "incidents: %d (%d open)   ledger: %d posted, %d updated, %d failed   subscriptions: %d\n",
		r.Incidents, r.Open, r.Posted, r.Updated, r.Failed, len(r.Subscriptions))
	fmt.Fprintf(w, "deliveries left to do: %d   transitions not yet routed: %d\n", r.Pending, len(r.Unrouted))
	for _, u := range r.Unrouted {
		fmt.Fprintf(w, "  not yet routed: %s\n", u)
	}
	if len(r.Lanes) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INCIDENT\tDESTINATION\tMODE\tROOT\tSHOWS\tREPLIED\tFAILED\tNEXT")
		for _, l := range r.Lanes {
			root := "-"
			switch {
			case l.RootTS != "":
				root = l.RootChannel + "/" + l.RootTS
			case l.Rooted:
				root = "posted"
			}
			replied := "-"
			if l.Replied > l.Join {
				replied = fmt.Sprintf("up to #%d", l.Replied)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.Incident, l.Dest, orDash(l.Mode), root, orDash(l.Shows),
				replied, l.Failures, orDash(l.Next))
		}
		_ = tw.Flush()
	}
	if len(r.Acks) > 0 {
		fmt.Fprintln(w, "\nacknowledged:")
		ids := make([]string, 0, len(r.Acks))
		for id := range r.Acks {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			a := r.Acks[id]
			late := ""
			if !a.Effective {
				late = "  (after its resolve: changed nothing)"
			}
			fmt.Fprintf(w, "  %s  by %s via %s at %s%s\n", id, a.By, a.Via, clock(a.At), late)
		}
	}
	if len(r.Subscriptions) > 0 {
		fmt.Fprintln(w, "\nsubscriptions:")
		for _, s := range r.Subscriptions {
			by := strings.TrimSpace(s.Via + " " + s.By)
			fmt.Fprintf(w, "  %s  %s  %s  (%s)\n", s.ID, s.Channel, s.Filter, by)
		}
	}
	if len(r.Silences) > 0 {
		fmt.Fprintf(w, "\nsilences (%d notifications held):\n", len(r.Suppressed))
		for _, s := range r.Silences {
			fmt.Fprintf(w, "  %s  %s  %s  %s  held %d  (%s %s)\n", s.ID, s.Status, MatcherString(s.Matchers), silenceWindow(&s),
				s.Suppressed, s.Via, s.CreatedBy)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
