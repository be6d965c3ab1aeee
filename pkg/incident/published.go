package incident

import (
	"context"
	"sort"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// ReadPublished reads every incident transition in INCIDENTS.
func ReadPublished(ctx context.Context, b *bus.Bus) ([]*event.Event, error) {
	var out []*event.Event
	err := b.ReadAll(ctx, streams.Incidents, nil, func(e *event.Event, err error) error {
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// FoldPublished rebuilds incidents from their published transitions (as in
// INCIDENTS): what consumers of the stream know, newest onset first.
func FoldPublished(evs []*event.Event) []*Incident {
	p := publishedFold{}
	for _, e := range evs {
		p.apply(e)
	}
	out := make([]*Incident, 0, len(p))
	for _, inc := range p {
		if inc.Rule == "" {
			continue // only referenced as an inhibitor whose opening is not in the stream
		}
		out = append(out, inc)
	}
	SortIncidents(out)
	return out
}

// publishedFold is the incidents of FoldPublished, by id.
type publishedFold map[string]*Incident

func (p publishedFold) get(id string) *Incident {
	inc := p[id]
	if inc == nil {
		inc = &Incident{ID: id}
		p[id] = inc
	}
	return inc
}

// apply records one published transition in its incident (other events
// are ignored).
func (p publishedFold) apply(e *event.Event) {
	tr := Transition{Type: string(e.Type), DecidedAt: e.Time.UTC(), Published: true, EventID: e.ID, Subject: e.Subject}
	var inc *Incident
	switch d := e.Data.(type) {
	case event.IncidentOpened:
		inc = p.opened(d, &tr)
	case event.IncidentSuppressed:
		inc = p.suppressed(d, &tr)
	case event.IncidentEscalated:
		inc = p.escalated(d, &tr)
	case event.IncidentResolved:
		inc = p.resolved(d, &tr)
	default:
		return
	}
	tr.Ordinal = len(inc.Transitions) // INCIDENTS is in publication order
	inc.Transitions = append(inc.Transitions, tr)
}

func (p publishedFold) opened(d event.IncidentOpened, tr *Transition) *Incident {
	inc := p.get(d.IncidentID)
	inc.Rule, inc.Kind, inc.Group, inc.Summary, inc.Runbook = d.Rule, d.Kind, LabelsOf(d.Group), d.Summary, d.Runbook
	inc.OpenedAt, inc.Severity, inc.State, inc.Evidence = d.OpenedAt.UTC(), d.Severity, event.StateOpen, d.Evidence
	if levelRank[d.Severity] > levelRank[inc.PeakSeverity] {
		inc.PeakSeverity = d.Severity
	}
	tr.PublishedOrdinal, tr.At, tr.Severity, tr.Evidence = d.Ordinal, inc.OpenedAt, d.Severity, d.Evidence
	return inc
}

func (p publishedFold) suppressed(d event.IncidentSuppressed, tr *Transition) *Incident {
	inc := p.get(d.IncidentID)
	inc.Rule, inc.Kind, inc.Group, inc.Summary = d.Rule, d.Kind, LabelsOf(d.Group), d.Summary
	inc.OpenedAt, inc.Severity, inc.State, inc.SuppressedBy, inc.Evidence = d.OpenedAt.UTC(), d.Severity, event.StateSuppressed, d.SuppressedBy, d.Evidence
	if levelRank[d.Severity] > levelRank[inc.PeakSeverity] {
		inc.PeakSeverity = d.Severity
	}
	by := p.get(d.SuppressedBy)
	by.Suppressions = append(by.Suppressions, Suppression{IncidentID: d.IncidentID, Rule: d.Rule, Group: LabelsOf(d.Group), Severity: d.Severity, At: d.At.UTC()})
	tr.PublishedOrdinal, tr.At, tr.Severity, tr.Evidence = d.Ordinal, d.At.UTC(), d.Severity, d.Evidence
	return inc
}

func (p publishedFold) escalated(d event.IncidentEscalated, tr *Transition) *Incident {
	inc := p.get(d.IncidentID)
	if inc.Rule == "" {
		inc.Rule, inc.Group = d.Rule, LabelsOf(d.Group)
	}
	inc.Severity, inc.Evidence = d.To, d.Evidence
	if d.Summary != "" {
		inc.Summary = d.Summary
	}
	if d.Flapping != nil {
		inc.State, tr.Flapping = event.StateFlapping, true
	}
	if levelRank[d.To] > levelRank[inc.PeakSeverity] {
		inc.PeakSeverity = d.To
	}
	tr.PublishedOrdinal, tr.At, tr.Severity, tr.From, tr.Evidence = d.Ordinal, d.At.UTC(), d.To, d.From, d.Evidence
	return inc
}

func (p publishedFold) resolved(d event.IncidentResolved, tr *Transition) *Incident {
	inc := p.get(d.IncidentID)
	if inc.Rule == "" {
		inc.Rule, inc.Group, inc.OpenedAt = d.Rule, LabelsOf(d.Group), d.OpenedAt.UTC()
	}
	at := d.ResolvedAt.UTC()
	inc.State, inc.ResolvedAt, inc.PeakSeverity, inc.Evidence = event.StateResolved, &at, d.PeakSeverity, d.Evidence
	if d.Summary != "" {
		inc.Summary = d.Summary
	}
	tr.PublishedOrdinal, tr.At, tr.Severity, tr.Evidence = d.Ordinal, at, inc.Severity, d.Evidence
	return inc
}

// SortIncidents orders incidents newest onset first, then by id.
func SortIncidents(incs []*Incident) {
	sort.Slice(incs, func(i, j int) bool {
		if !incs[i].OpenedAt.Equal(incs[j].OpenedAt) {
			return incs[i].OpenedAt.After(incs[j].OpenedAt)
		}
		return incs[i].ID < incs[j].ID
	})
}
