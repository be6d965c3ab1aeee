package incident

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// op is a predicate's comparison.
type op int

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opIn
	opNotIn
)

var opNames = map[string]op{
	"=": opEq, "==": opEq, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe, "in": opIn, "not in": opNotIn,
}

// pred is one compiled predicate: field op value(s).
type pred struct {
	field   string
	slot    int // index of the field in the type's extracted values
	op      op
	strs    []string
	nums    []float64 // parallel to strs; NaN-free only when numeric is set
	numeric bool      // every value is a number
	text    string
}

// parsePred reads "field op value", "field in [a, b]" or "field not in (a, b)".
// Values are numbers, bare words or quoted strings.
func parsePred(s string) (*pred, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && isFieldChar(s[i]) {
		i++
	}
	if i == 0 {
		return nil, fmt.Errorf("%q: expected a field name first, like status = failed", s)
	}
	p := &pred{field: s[:i], text: s}
	rest := strings.TrimSpace(s[i:])
	opText := opPrefix(rest)
	o, ok := opNames[opText]
	if !ok {
		return nil, fmt.Errorf("%q: unknown operator %q (use =, !=, <, <=, >, >=, in, not in)", s, opText)
	}
	p.op = o
	vals, err := parseValues(strings.TrimSpace(rest[len(opText):]), o, opText)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	p.strs = vals
	p.numeric = true
	for _, v := range vals {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			p.numeric = false
			f = 0
		}
		p.nums = append(p.nums, f)
	}
	if (o == opLt || o == opLe || o == opGt || o == opGe) && !p.numeric {
		return nil, fmt.Errorf("%q: %s compares numbers; %q is not a number", s, opText, vals[0])
	}
	return p, nil
}

// opPrefix is the operator at the start of s, as written.
func opPrefix(s string) string {
	switch {
	case strings.HasPrefix(s, "not in") && len(s) > 6 && !isFieldChar(s[6]):
		return "not in"
	case strings.HasPrefix(s, "in") && len(s) > 2 && !isFieldChar(s[2]):
		return "in"
	}
	j := 0
	for j < len(s) && strings.ContainsRune("=!<>", rune(s[j])) {
		j++
	}
	return s[:j]
}

// parseValues reads the value, or the list of values of in and not in,
// that follows the operator.
func parseValues(rest string, o op, opText string) ([]string, error) {
	if rest == "" {
		return nil, fmt.Errorf("missing value after %q", opText)
	}
	if o != opIn && o != opNotIn {
		u, err := unquote(rest)
		if err != nil {
			return nil, err
		}
		return []string{u}, nil
	}
	if len(rest) < 2 || !(rest[0] == '[' && rest[len(rest)-1] == ']' || rest[0] == '(' && rest[len(rest)-1] == ')') {
		return nil, fmt.Errorf("%s takes a list like [a, b]", opText)
	}
	var vals []string
	for _, v := range splitList(rest[1 : len(rest)-1]) {
		u, err := unquote(v)
		if err != nil {
			return nil, err
		}
		vals = append(vals, u)
	}
	if len(vals) == 0 {
		return nil, errors.New("the list is empty")
	}
	return vals, nil
}

func isFieldChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func splitList(s string) []string {
	var out []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
			cur.WriteByte(c)
		case c == ',':
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if t := strings.TrimSpace(cur.String()); t != "" || len(out) > 0 {
		out = append(out, t)
	}
	return out
}

func unquote(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", fmt.Errorf("empty value")
	}
	if v[0] == '"' || v[0] == '\'' {
		if len(v) < 2 || v[len(v)-1] != v[0] {
			return "", fmt.Errorf("unterminated quote in %s", v)
		}
		return v[1 : len(v)-1], nil
	}
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' || v[i] == ',' || v[i] == '[' || v[i] == ']' {
			return "", fmt.Errorf("value %q has spaces or brackets: quote it", v)
		}
	}
	return v, nil
}

// eval tests the predicate on an extracted value.
func (p *pred) eval(v *value) bool {
	switch p.op {
	case opEq:
		return v.equals(p.strs[0], p.nums[0], p.numeric)
	case opNe:
		return !v.equals(p.strs[0], p.nums[0], p.numeric)
	case opIn, opNotIn:
		in := false
		for i := range p.strs {
			if v.equals(p.strs[i], p.nums[i], p.numeric) {
				in = true
				break
			}
		}
		return in == (p.op == opIn)
	}
	f, ok := v.number()
	if !ok {
		return false
	}
	switch p.op {
	case opLt:
		return f < p.nums[0]
	case opLe:
		return f <= p.nums[0]
	case opGt:
		return f > p.nums[0]
	default:
		return f >= p.nums[0]
	}
}

// equals compares a value with a literal: numbers numerically, the rest as text.
func (v *value) equals(s string, f float64, numeric bool) bool {
	switch v.kind {
	case valNumber:
		if numeric {
			n, ok := v.number()
			return ok && n == f
		}
		return string(v.raw) == s
	case valString:
		if v.escaped {
			return v.text() == s
		}
		return string(v.raw) == s
	case valTrue:
		return s == "true"
	case valFalse:
		return s == "false"
	case valMissing, valNull:
		return s == ""
	}
	return false
}

func (v *value) number() (float64, bool) {
	if v.kind != valNumber {
		return 0, false
	}
	// Integers (status codes, counts) are the common case: parse them
	// without strconv's float machinery.
	n, neg, i := int64(0), false, 0
	if len(v.raw) > 0 && v.raw[0] == '-' {
		neg, i = true, 1
	}
	if i < len(v.raw) && len(v.raw)-i <= 15 && !bytes.ContainsAny(v.raw[i:], ".eE") {
		for ; i < len(v.raw); i++ {
			n = n*10 + int64(v.raw[i]-'0')
		}
		if neg {
			n = -n
		}
		return float64(n), true
	}
	f, err := strconv.ParseFloat(string(v.raw), 64)
	return f, err == nil
}
