package incident

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/pkg/config"
)

// DecodeRules reads a rules document ("rules:" and a list) without
// compiling it, so that it can be laid over other rules first: a rule may
// name (inhibitedBy) a rule another layer defines.
func DecodeRules(source string, doc []byte) (RuleSet, error) {
	var rs RuleSet
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&rs); err != nil && !errors.Is(err, io.EOF) {
		return rs, fmt.Errorf("%w: %s: %w", config.ErrInvalid, source, err)
	}
	return rs, nil
}

// Layer is one source of rules.
type Layer struct {
	Source string
	Rules  []Rule
}

// Merge lays rule sources over each other, in order: a rule named like an
// earlier one replaces it where it stood, a new name is appended. It
// returns the merged set and the sources' names ("default rules +
// rules.yaml"); references resolve when the set is compiled, against all
// of it, so overriding one default rule needs only that rule.
func Merge(layers ...Layer) (RuleSet, string) {
	var set RuleSet
	at := map[string]int{}
	var sources []string
	for _, l := range layers {
		for _, r := range l.Rules {
			if i, ok := at[r.Name]; ok {
				set.Rules[i] = r
				continue
			}
			at[r.Name] = len(set.Rules)
			set.Rules = append(set.Rules, r)
		}
		sources = append(sources, l.Source)
	}
	return set, strings.Join(sources, " + ")
}

// DefaultLayer is the default rules, as a layer to merge.
func DefaultLayer() (Layer, error) {
	rs, err := DecodeRules("default rules", defaultRules)
	return Layer{Source: "default rules", Rules: rs.Rules}, err
}
