// Package classify puts on-call knowledge where the alerting system can use
// it: configuration maps a third-party integration's answers (its status
// code, its own error code, a pattern in its error text) to a
// classification such as payment_required, each with the reason it is
// true. The seed's case: a provider that answers 401 when the subscription
// is unpaid. Herald applies it where producers' events come in, and records
// both on the event, so rules, evidence and messages show them.
package classify

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/heraldhq/herald/pkg/event"
)

// Rule is one mapping. Every condition it sets must hold; the first rule
// that matches wins.
type Rule struct {
	// Integration is the third party (stripe); empty matches any.
	Integration string `yaml:"integration"`
	// StatusCodes are HTTP statuses, any of which matches; empty matches any.
	StatusCodes []int `yaml:"statusCodes"`
	// ErrorCode is the integration's own error code, matched exactly.
	ErrorCode string `yaml:"errorCode"`
	// Error is a regular expression (RE2) searched in the error text.
	Error string `yaml:"error"`
	// Classification is what a matching answer means.
	Classification string `yaml:"classification"`
	// Reason documents why, for the people reading the incident.
	Reason string `yaml:"reason"`
}

// Defaults are the mappings Herald ships: the seed's 401 that means an
// unpaid subscription, and HTTP's own 402.
func Defaults() []Rule {
	return []Rule{
		{
			Integration: "stripe", StatusCodes: []int{401}, Classification: "payment_required",
			Reason: "Stripe refuses the account's API keys (401) once the account is suspended, most often for an unpaid invoice: check billing before rotating keys",
		},
		{
			StatusCodes: []int{402}, Classification: "payment_required",
			Reason: "HTTP 402 Payment Required: the third party stopped serving this account until it is paid",
		},
	}
}

// maxReason is the schema's bound on classificationReason.
const maxReason = 512

var classificationPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

type compiled struct {
	Rule
	re *regexp.Regexp
}

// Classifier applies an ordered list of rules.
type Classifier struct{ rules []compiled }

// New checks and compiles the rules; an error names the rule at fault.
func New(rules []Rule) (*Classifier, error) {
	c := &Classifier{}
	for i, r := range rules {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("rule %d: %w", i, fmt.Errorf(format, args...))
		}
		switch {
		case !classificationPattern.MatchString(r.Classification):
			return nil, bad("classification %q: lower-case letters, digits and _ (payment_required)", r.Classification)
		case r.Reason == "":
			return nil, bad("reason is required: say why this answer means %s", r.Classification)
		case len(r.Reason) > maxReason:
			return nil, bad("reason: at most %d bytes", maxReason)
		case r.Integration == "" && len(r.StatusCodes) == 0 && r.ErrorCode == "" && r.Error == "":
			return nil, bad("give at least one of integration, statusCodes, errorCode, error")
		}
		for _, s := range r.StatusCodes {
			if s < 0 || s > 999 {
				return nil, bad("statusCodes: %d is not an HTTP status", s)
			}
		}
		cr := compiled{Rule: r}
		if r.Error != "" {
			re, err := regexp.Compile(r.Error)
			if err != nil {
				return nil, bad("error: %w", err)
			}
			cr.re = re
		}
		c.rules = append(c.rules, cr)
	}
	return c, nil
}

// Integration classifies one integration call in place, unless the
// producer classified it already (it knows its integration better). It
// reports whether it set a classification.
func (c *Classifier) Integration(d *event.IntegrationCallCompleted) bool {
	if d.Classification != "" {
		return false
	}
	for _, r := range c.rules {
		if r.matches(d) {
			d.Classification, d.ClassificationReason = r.Classification, r.Reason
			return true
		}
	}
	return false
}

func (r compiled) matches(d *event.IntegrationCallCompleted) bool {
	return (r.Integration == "" || r.Integration == d.Integration) &&
		(len(r.StatusCodes) == 0 || slices.Contains(r.StatusCodes, d.StatusCode)) &&
		(r.ErrorCode == "" || r.ErrorCode == d.ErrorCode) &&
		(r.re == nil || r.re.MatchString(d.Error))
}

// Events classifies each integration_call_completed event in place (its
// Data as Catalog.Encode left it) and encodes it again, validated against
// its schema; events of other types are left as they are. An error is a
// rule's fault: the classified data failed its schema.
func (c *Classifier) Events(cat *event.Catalog, events ...*event.Event) error {
	for _, e := range events {
		d, ok := e.Data.(event.IntegrationCallCompleted)
		if !ok || !c.Integration(&d) {
			continue
		}
		e.Data, e.Raw = d, nil
		if err := cat.Encode(e); err != nil {
			return fmt.Errorf("classify %s: %w", e.ID, err)
		}
	}
	return nil
}
