package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
)

// Rules is a compiled, validated rule set.
type Rules struct {
	// Document is the canonical JSON of the rule set; Fingerprint its SHA-256.
	Document    string
	Fingerprint string
	Source      string

	rules  []*rule
	byName map[string]*rule
	// byType lists, per event type, what each interested rule needs.
	byType map[string]*typeInfo
}

// List returns the rules as configured, in order.
func (rs *Rules) List() []Rule {
	out := make([]Rule, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = r.cfg
	}
	return out
}

// Names returns the rule names in order.
func (rs *Rules) Names() []string {
	out := make([]string, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = r.cfg.Name
	}
	return out
}

// typeInfo is what the engine does with one event type: which fields to
// extract and which rules look at it.
type typeInfo struct {
	fields []string
	// kinds and required say what the schema allows for each field: the
	// projection checks the fields it reads (see fieldsValid).
	kinds    []valKind // valMissing: any
	required []bool
	uses     []use
}

// use is one rule's interest in an event type, in one role.
type use struct {
	r    *rule
	role role
	// preds: the matcher's where, then (ratio) the failed filter.
	where  []*pred
	failed []*pred
	group  []int // slots of the groupBy fields
	// class and reason (a match rule's hits selected by classification):
	// the slots of classification and classificationReason, kept as the
	// evidence's; -1 otherwise.
	class, reason int
}

type role uint8

const (
	roleMatch role = iota
	roleActivity
	roleClear
)

// rule is a compiled rule.
type rule struct {
	cfg         Rule
	index       int
	kind        string
	fingerprint string
	window      int64 // ns
	step        int64 // ns
	buckets     int
	minVolume   int
	resolveFor  int64
	// flapCycles and flapWindow are the flap control (0: off).
	flapCycles int
	flapWindow int64
	sev        []sevSpec // highest level first
	inhibitors []inhibitor
}

type sevSpec struct {
	level     string
	rank      int // P1 = 3 … P3 = 1
	threshold float64
	strict    bool  // above rather than atLeast
	after     int64 // absence
	forDur    int64
}

type inhibitor struct {
	rule  string
	equal []string
}

var (
	namePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	levelRank    = map[string]int{"P1": 3, "P2": 2, "P3": 1}
	rankLevel    = map[int]string{3: "P1", 2: "P2", 1: "P3"}
	errNoCatalog = errors.New("incident: rules need the event catalog")
)

// RuleError is a rule that does not validate: it names the rule and field.
type RuleError struct {
	Rule  string
	Field string
	Err   error
}

func (e *RuleError) Error() string { return fmt.Sprintf("rule %s: %s: %v", e.Rule, e.Field, e.Err) }
func (e *RuleError) Unwrap() error { return e.Err }

// ParseRules reads a rules document (YAML or JSON, `rules:` and a list),
// rejecting unknown keys with their line, and compiles it.
func ParseRules(source string, doc []byte, cat *event.Catalog) (*Rules, error) {
	rs, err := DecodeRules(source, doc)
	if err != nil {
		return nil, err
	}
	return Compile(source, rs, cat)
}

// Compile validates a rule set against the event catalog and compiles it.
// Every error names the rule and the field at fault; all are reported.
func Compile(source string, rs RuleSet, cat *event.Catalog) (*Rules, error) {
	if cat == nil {
		return nil, errNoCatalog
	}
	out := &Rules{Source: source, byName: map[string]*rule{}, byType: map[string]*typeInfo{}}
	var errs []error
	for i := range rs.Rules {
		r, err := compileRule(i, rs.Rules[i], cat)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := out.byName[r.cfg.Name]; dup {
			errs = append(errs, &RuleError{r.cfg.Name, "name", errors.New("two rules have this name")})
			continue
		}
		out.byName[r.cfg.Name] = r
		out.rules = append(out.rules, r)
	}
	for _, r := range out.rules {
		errs = append(errs, out.linkInhibitors(r)...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s: %w", config.ErrInvalid, source, errors.Join(errs...))
	}
	for _, r := range out.rules {
		if err := out.index(r); err != nil {
			return nil, err
		}
	}
	out.fieldKinds(cat)
	canon := RuleSet{Rules: out.List()}
	b, err := json.Marshal(canon)
	if err != nil {
		return nil, fmt.Errorf("incident: encode rules: %w", err)
	}
	sum := sha256.Sum256(b)
	out.Document, out.Fingerprint = string(b), hex.EncodeToString(sum[:])
	return out, nil
}

// linkInhibitors resolves r's inhibitedBy against the other rules of the
// set, and reports what does not hold.
func (rs *Rules) linkInhibitors(r *rule) []error {
	var errs []error
	for j, in := range r.cfg.InhibitedBy {
		field := fmt.Sprintf("inhibitedBy[%d]", j)
		other, ok := rs.byName[in.Rule]
		switch {
		case !ok:
			errs = append(errs, &RuleError{r.cfg.Name, field + ".rule", fmt.Errorf("no rule named %q", in.Rule)})
			continue
		case other == r:
			errs = append(errs, &RuleError{r.cfg.Name, field + ".rule", errors.New("a rule cannot inhibit itself")})
			continue
		}
		equal := in.Equal
		if len(equal) == 0 {
			for _, g := range other.cfg.GroupBy {
				if slices.Contains(r.cfg.GroupBy, g) {
					equal = append(equal, g)
				}
			}
			if len(equal) == 0 {
				errs = append(errs, &RuleError{r.cfg.Name, field, fmt.Errorf("rules %s and %s share no groupBy field: set equal", r.cfg.Name, other.cfg.Name)})
				continue
			}
		}
		for _, f := range equal {
			if !slices.Contains(r.cfg.GroupBy, f) || !slices.Contains(other.cfg.GroupBy, f) {
				errs = append(errs, &RuleError{r.cfg.Name, field + ".equal", fmt.Errorf("%q must be in the groupBy of both %s and %s", f, r.cfg.Name, other.cfg.Name)})
			}
		}
		r.inhibitors = append(r.inhibitors, inhibitor{rule: other.cfg.Name, equal: equal})
	}
	return errs
}

// fieldKinds records, for each field the rules read, what its type's schema
// allows: the fold checks those fields only (see fieldsValid).
func (rs *Rules) fieldKinds(cat *event.Catalog) {
	for t, ti := range rs.byType {
		d, _ := cat.Def(event.Type(t)) // checked in compileRule
		for _, f := range ti.fields {
			k, req := valMissing, false
			for _, df := range d.Fields {
				if df.Name == f {
					req = df.Required
					switch {
					case df.Type == "integer" || df.Type == "number":
						k = valNumber
					case df.Type == "boolean":
						k = valTrue // true or false
					case strings.HasPrefix(df.Type, "string") || strings.HasPrefix(df.Type, "enum"):
						k = valString
					}
				}
			}
			ti.kinds, ti.required = append(ti.kinds, k), append(ti.required, req)
		}
	}
}

// failFunc makes a rule's error for one of its fields.
type failFunc func(field string, format string, args ...any) error

// compileRule validates one rule against the catalog and compiles it. The
// checks run in the order of the rule's fields; the first that fails is
// the rule's error.
func compileRule(i int, c Rule, cat *event.Catalog) (*rule, error) {
	name := c.Name
	if name == "" {
		name = fmt.Sprintf("#%d", i+1)
	}
	fail := func(field string, format string, args ...any) error {
		return &RuleError{name, field, fmt.Errorf(format, args...)}
	}
	if !namePattern.MatchString(c.Name) {
		return nil, fail("name", "%q must be lower-case letters, digits, - and _ (at most 63)", c.Name)
	}
	r := &rule{cfg: c, index: i, kind: c.Kind, minVolume: c.MinVolume, resolveFor: int64(c.Resolve.For)}
	if c.Flap != nil {
		r.flapCycles, r.flapWindow = c.Flap.MaxCycles, int64(c.Flap.Window)
	}
	if err := checkShape(c, fail); err != nil {
		return nil, err
	}
	if err := checkMatchers(c, cat, fail); err != nil {
		return nil, err
	}
	if err := r.compileWindow(c, fail); err != nil {
		return nil, err
	}
	if err := r.compileSeverities(c, fail); err != nil {
		return nil, err
	}
	fp, _ := json.Marshal(c)
	sum := sha256.Sum256(fp)
	r.fingerprint = hex.EncodeToString(sum[:8])
	return r, nil
}

// checkShape checks the rule's kind and that it has the matchers of its
// kind, and only those.
func checkShape(c Rule, fail failFunc) error {
	switch c.Kind {
	case KindRatio, KindCount, KindAbsence, KindMatch:
	default:
		return fail("kind", "%q is not ratio, count, absence or match", c.Kind)
	}
	switch {
	case c.Failed != nil && c.Kind != KindRatio:
		return fail("failed", "only ratio rules have failed")
	case c.Activity != nil && c.Kind != KindAbsence:
		return fail("activity", "only absence rules have activity")
	case c.Clear != nil && c.Kind != KindMatch:
		return fail("clear", "only match rules have clear")
	case c.Kind == KindRatio && (c.Failed == nil || len(c.Failed.Where) == 0):
		return fail("failed", "a ratio rule needs failed.where: the predicates that make a matched event a failure")
	case c.Kind == KindAbsence && c.Activity == nil:
		return fail("activity", "an absence rule needs activity: the events that show the group is being called")
	case c.Resolve.For < 0:
		return fail("resolve.for", "must not be negative")
	case c.Flap != nil && c.Flap.MaxCycles < 1:
		return fail("flap.maxCycles", "must be at least 1: the open/resolve cycles allowed in the window")
	case c.Flap != nil && c.Flap.Window <= 0:
		return fail("flap.window", "must be positive: how long the condition must stay clear to resolve a flapping incident")
	}
	return nil
}

// checkMatchers checks the rule's matchers (their types, predicates and
// the groupBy fields) against the catalog.
func checkMatchers(c Rule, cat *event.Catalog, fail failFunc) error {
	type m struct {
		field string
		m     *Matcher
		extra *Filter
	}
	ms := []m{{"match", &c.Match, c.Failed}}
	if c.Activity != nil {
		ms = append(ms, m{"activity", c.Activity, nil})
	}
	if c.Clear != nil {
		ms = append(ms, m{"clear", c.Clear, nil})
	}
	for _, x := range ms {
		if len(x.m.Types) == 0 {
			return fail(x.field+".types", "list at least one event type")
		}
		for j, t := range x.m.Types {
			d, err := cat.Def(event.Type(t))
			if err != nil {
				return fail(fmt.Sprintf("%s.types[%d]", x.field, j), "%v", err)
			}
			if d.Log != event.LogEvents {
				return fail(fmt.Sprintf("%s.types[%d]", x.field, j), "%s is in the %s log; rules read the events log", t, d.Log)
			}
			if err := checkWhere(d, x.m.Where, x.field+".where", fail); err != nil {
				return err
			}
			if x.extra != nil {
				if err := checkWhere(d, x.extra.Where, "failed.where", fail); err != nil {
					return err
				}
			}
			for k, g := range c.GroupBy {
				if err := checkField(d, g, false); err != nil {
					return fail(fmt.Sprintf("groupBy[%d]", k), "%v", err)
				}
			}
		}
	}
	seen := map[string]bool{}
	for k, g := range c.GroupBy {
		if seen[g] {
			return fail(fmt.Sprintf("groupBy[%d]", k), "%q is listed twice", g)
		}
		seen[g] = true
	}
	return nil
}

// checkWhere checks predicates against the schema of the type they read.
func checkWhere(d *event.Def, where []string, field string, fail failFunc) error {
	for k, w := range where {
		p, err := parsePred(w)
		if err != nil {
			return fail(fmt.Sprintf("%s[%d]", field, k), "%v", err)
		}
		if err := checkField(d, p.field, p.op >= opLt && p.op <= opGe); err != nil {
			return fail(fmt.Sprintf("%s[%d]", field, k), "%v", err)
		}
		if err := checkEnum(d, p); err != nil {
			return fail(fmt.Sprintf("%s[%d]", field, k), "%v", err)
		}
	}
	return nil
}

// compileWindow checks and compiles the window (ratio and count rules) and
// the minimum volume (ratio).
func (r *rule) compileWindow(c Rule, fail failFunc) error {
	switch c.Kind {
	case KindRatio, KindCount:
		if c.Window <= 0 {
			return fail("window", "a %s rule needs a window (like 5m)", c.Kind)
		}
		res := c.Resolution
		if res == 0 {
			res = c.Window / 20
		}
		if res < config.Duration(time.Second) || c.Window%res != 0 {
			return fail("resolution", "%s must be at least 1s and divide the window %s", res.D(), c.Window.D())
		}
		r.window, r.step, r.buckets = int64(c.Window), int64(res), int(c.Window/res)
		if r.buckets > 600 {
			return fail("resolution", "the window holds %d steps; at most 600", r.buckets)
		}
	default:
		if c.Window != 0 || c.Resolution != 0 {
			return fail("window", "only ratio and count rules have a window")
		}
	}
	if c.MinVolume < 0 || c.MinVolume > 0 && c.Kind != KindRatio {
		return fail("minVolume", "only ratio rules have a minimum volume, and it is not negative")
	}
	return nil
}

// compileSeverities checks and compiles the severities, highest level
// first.
func (r *rule) compileSeverities(c Rule, fail failFunc) error {
	if len(c.Severities) == 0 {
		return fail("severities", "list at least one severity (level P1, P2 or P3)")
	}
	for k, s := range c.Severities {
		field := fmt.Sprintf("severities[%d]", k)
		sp, err := compileSeverity(c.Kind, s, field, fail)
		if err != nil {
			return err
		}
		for _, o := range r.sev {
			if o.rank == sp.rank {
				return fail(field+".level", "%s is listed twice", s.Level)
			}
		}
		r.sev = append(r.sev, sp)
	}
	sort.Slice(r.sev, func(a, b int) bool { return r.sev[a].rank > r.sev[b].rank })
	// A higher level must be at least as hard to reach: conditions nest, so
	// the level of a group is simply the highest that holds.
	for k := 1; k < len(r.sev); k++ {
		hi, lo := r.sev[k-1], r.sev[k]
		if hi.after < lo.after || hi.threshold < lo.threshold || hi.threshold == lo.threshold && !hi.strict && lo.strict {
			return fail("severities", "%s must be at least as hard to reach as %s (thresholds nest)", hi.level, lo.level)
		}
	}
	return nil
}

// compileSeverity checks and compiles one severity of a rule of kind.
func compileSeverity(kind string, s Severity, field string, fail failFunc) (sevSpec, error) {
	rank, ok := levelRank[s.Level]
	if !ok {
		return sevSpec{}, fail(field+".level", "%q is not P1, P2 or P3", s.Level)
	}
	if s.For < 0 {
		return sevSpec{}, fail(field+".for", "must not be negative")
	}
	sp := sevSpec{level: s.Level, rank: rank, forDur: int64(s.For)}
	if s.Above != nil && s.AtLeast != nil {
		return sevSpec{}, fail(field, "set above or atLeast, not both")
	}
	if kind == KindAbsence {
		if s.Above != nil || s.AtLeast != nil {
			return sevSpec{}, fail(field, "absence severities use after (a duration), not above/atLeast")
		}
		if s.After <= 0 {
			return sevSpec{}, fail(field+".after", "how long without a matched event, like 1h")
		}
		sp.after = int64(s.After)
		return sp, nil
	}
	if s.After != 0 {
		return sevSpec{}, fail(field+".after", "only absence severities have after")
	}
	switch {
	case s.Above != nil:
		sp.threshold, sp.strict = *s.Above, true
	case s.AtLeast != nil:
		sp.threshold = *s.AtLeast
	case kind == KindMatch:
		sp.threshold = 1
	default:
		return sevSpec{}, fail(field, "set a threshold: above or atLeast")
	}
	if math.IsNaN(sp.threshold) || sp.threshold < 0 || kind == KindRatio && sp.threshold > 1 {
		return sevSpec{}, fail(field, "threshold %v is out of range (ratio: 0 to 1; count and match: 0 or more)", sp.threshold)
	}
	return sp, nil
}

// checkField reports a field the type's schema does not have.
func checkField(d *event.Def, name string, numeric bool) error {
	var names []string
	for _, f := range d.Fields {
		if f.Name == name {
			if numeric && f.Type != "integer" && f.Type != "number" {
				return fmt.Errorf("%s.%s is a %s; numeric comparisons need a number", d.Type, name, f.Type)
			}
			return nil
		}
		names = append(names, f.Name)
	}
	return fmt.Errorf("%q is not a field of %s (fields: %s)", name, d.Type, strings.Join(names, ", "))
}

// checkEnum reports a value the field's schema cannot hold (a typo such as
// status = faild would otherwise never match).
func checkEnum(d *event.Def, p *pred) error {
	for _, f := range d.Fields {
		if f.Name != p.field || !strings.HasPrefix(f.Type, "enum: ") {
			continue
		}
		allowed := strings.Split(strings.TrimPrefix(f.Type, "enum: "), ", ")
		for _, v := range p.strs {
			if !slices.Contains(allowed, v) {
				return fmt.Errorf("%s.%s is never %q (values: %s)", d.Type, p.field, v, strings.Join(allowed, ", "))
			}
		}
	}
	return nil
}

// index records which fields of which types each role of r needs.
func (rs *Rules) index(r *rule) error {
	add := func(m *Matcher, rl role, failed *Filter) {
		for _, t := range m.Types {
			ti := rs.byType[t]
			if ti == nil {
				ti = &typeInfo{}
				rs.byType[t] = ti
			}
			slot := func(name string) int {
				if i := slices.Index(ti.fields, name); i >= 0 {
					return i
				}
				ti.fields = append(ti.fields, name)
				return len(ti.fields) - 1
			}
			u := use{r: r, role: rl, class: -1, reason: -1}
			for _, w := range m.Where {
				p, _ := parsePred(w) // validated
				p.slot = slot(p.field)
				u.where = append(u.where, p)
				if p.field == "classification" && r.kind == KindMatch && rl == roleMatch {
					u.class, u.reason = p.slot, slot("classificationReason")
				}
			}
			if failed != nil {
				for _, w := range failed.Where {
					p, _ := parsePred(w)
					p.slot = slot(p.field)
					u.failed = append(u.failed, p)
				}
			}
			for _, g := range r.cfg.GroupBy {
				u.group = append(u.group, slot(g))
			}
			ti.uses = append(ti.uses, u)
		}
	}
	add(&r.cfg.Match, roleMatch, r.cfg.Failed)
	if r.cfg.Activity != nil {
		add(r.cfg.Activity, roleActivity, nil)
	}
	if r.cfg.Clear != nil {
		add(r.cfg.Clear, roleClear, nil)
	}
	return nil
}
