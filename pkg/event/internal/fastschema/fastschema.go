// Package fastschema checks event data against the subset of JSON Schema
// that Herald's event schemas use, directly on the JSON bytes, without
// building a generic value tree.
//
// It exists for speed: the general validator (santhosh-tekuri/jsonschema)
// needs the data decoded into maps and converts every number to a big.Rat
// through fmt, which alone cost more than JetStream's own work per event. The
// check is sound, not complete: Valid returns true only for data the general
// validator accepts (a fuzz test holds it to that), and false whenever it is
// unsure (an edge-case number or date-time, a keyword it does not know), in
// which case the caller asks the general validator, which also explains any
// violation. A schema using a keyword outside the subset does not compile;
// its type is then always validated by the general validator.
package fastschema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// ErrUnsupported reports a schema keyword outside the subset.
var ErrUnsupported = errors.New("fastschema: unsupported keyword")

const (
	tObject = 1 << iota
	tArray
	tString
	tInteger
	tNumber
	tBoolean
	tNull
)

var typeBits = map[string]uint8{
	"object": tObject, "array": tArray, "string": tString, "integer": tInteger,
	"number": tNumber | tInteger, "boolean": tBoolean, "null": tNull,
}

// Validator is a compiled schema.
type Validator struct {
	root *node
	pool sync.Pool // *decoder
}

type decoder struct {
	r bytes.Reader
	d *jsontext.Decoder
}

type node struct {
	types uint8 // 0: any type

	props        map[string]*node
	required     map[string]int // name -> bit
	nRequired    int
	additional   *node
	noAdditional bool

	items              *node
	minItems, maxItems int

	minLen, maxLen int
	pattern        *regexp.Regexp
	enum           map[string]bool
	dateTime       bool

	min, max, exMin, exMax *float64
}

// Compile compiles a schema document as decoded by jsonschema.UnmarshalJSON
// (numbers as json.Number-like values, formatted with %v).
func Compile(doc any) (*Validator, error) {
	n, err := compile(doc, "")
	if err != nil {
		return nil, err
	}
	v := &Validator{root: n}
	v.pool.New = func() any {
		dc := &decoder{}
		dc.d = jsontext.NewDecoder(&dc.r)
		return dc
	}
	return v, nil
}

var ignored = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true,
	"examples": true, "default": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

// compile turns a schema object into a node. Its length is one switch with
// a case per supported keyword, read at a glance.
func compile(doc any, path string) (*node, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an object schema", ErrUnsupported, path)
	}
	n := &node{minItems: -1, maxItems: -1, minLen: -1, maxLen: -1}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		val := m[k]
		var err error
		switch k {
		case "type":
			err = n.compileType(val)
		case "properties":
			err = n.compileProperties(val, path)
		case "required":
			err = n.compileRequired(val, path)
		case "additionalProperties":
			switch a := val.(type) {
			case bool:
				n.noAdditional = !a
			default:
				n.additional, err = compile(a, path+"/additionalProperties")
			}
		case "items":
			n.items, err = compile(val, path+"/items")
		case "minItems":
			n.minItems, err = intOf(val, path, k)
		case "maxItems":
			n.maxItems, err = intOf(val, path, k)
		case "minLength":
			n.minLen, err = intOf(val, path, k)
		case "maxLength":
			n.maxLen, err = intOf(val, path, k)
		case "pattern":
			s, _ := val.(string)
			n.pattern, err = regexp.Compile(s)
		case "enum":
			err = n.compileEnum(val, path)
		case "format":
			if val != "date-time" {
				return nil, fmt.Errorf("%w: %s/format %v", ErrUnsupported, path, val)
			}
			n.dateTime = true
		case "minimum":
			n.min, err = floatOf(val, path, k)
		case "maximum":
			n.max, err = floatOf(val, path, k)
		case "exclusiveMinimum":
			n.exMin, err = floatOf(val, path, k)
		case "exclusiveMaximum":
			n.exMax, err = floatOf(val, path, k)
		default:
			if !ignored[k] {
				return nil, fmt.Errorf("%w: %s/%s", ErrUnsupported, path, k)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (n *node) compileProperties(val any, path string) error {
	props, ok := val.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: %s/properties", ErrUnsupported, path)
	}
	n.props = make(map[string]*node, len(props))
	for name, sub := range props {
		var err error
		if n.props[name], err = compile(sub, path+"/properties/"+name); err != nil {
			return err
		}
	}
	return nil
}

func (n *node) compileRequired(val any, path string) error {
	rs, ok := val.([]any)
	if !ok || len(rs) > 64 {
		return fmt.Errorf("%w: %s/required", ErrUnsupported, path)
	}
	n.required = make(map[string]int, len(rs))
	for i, r := range rs {
		s, ok := r.(string)
		if !ok {
			return fmt.Errorf("%w: %s/required", ErrUnsupported, path)
		}
		n.required[s] = i
	}
	n.nRequired = len(rs)
	return nil
}

func (n *node) compileEnum(val any, path string) error {
	es, ok := val.([]any)
	if !ok {
		return fmt.Errorf("%w: %s/enum", ErrUnsupported, path)
	}
	n.enum = map[string]bool{}
	for _, e := range es {
		s, ok := e.(string)
		if !ok {
			return fmt.Errorf("%w: %s/enum with non-string values", ErrUnsupported, path)
		}
		n.enum[s] = true
	}
	return nil
}

func (n *node) compileType(val any) error {
	switch t := val.(type) {
	case string:
		b, ok := typeBits[t]
		if !ok {
			return fmt.Errorf("%w: type %q", ErrUnsupported, t)
		}
		n.types = b
	case []any:
		for _, x := range t {
			s, _ := x.(string)
			b, ok := typeBits[s]
			if !ok {
				return fmt.Errorf("%w: type %v", ErrUnsupported, x)
			}
			n.types |= b
		}
	default:
		return fmt.Errorf("%w: type %v", ErrUnsupported, val)
	}
	return nil
}

func intOf(v any, path, k string) (int, error) {
	i, err := strconv.Atoi(fmt.Sprint(v))
	if err != nil || i < 0 {
		return 0, fmt.Errorf("%w: %s/%s %v", ErrUnsupported, path, k, v)
	}
	return i, nil
}

func floatOf(v any, path, k string) (*float64, error) {
	s := fmt.Sprint(v)
	if !exactFloat(s) {
		return nil, fmt.Errorf("%w: %s/%s %v is not exactly comparable as a float", ErrUnsupported, path, k, v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %s/%s %v", ErrUnsupported, path, k, v)
	}
	return &f, nil
}

// exactFloat accepts plain decimal literals with few enough digits that
// comparing their float64 values gives the same answer as comparing the
// exact decimals (the general validator uses big.Rat).
func exactFloat(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '-' && i == 0, c == '.':
		default:
			return false // exponents and anything else: let the general validator decide
		}
	}
	return digits > 0 && digits <= 15
}

// Valid reports whether data certainly matches the schema. False means
// "invalid or unsure": ask the general validator.
func (v *Validator) Valid(data []byte) bool {
	dc := v.pool.Get().(*decoder)
	defer v.pool.Put(dc)
	dc.r.Reset(data)
	dc.d.Reset(&dc.r)
	if !v.root.check(dc.d) {
		return false
	}
	// Nothing may follow the value.
	_, err := dc.d.ReadToken()
	return errors.Is(err, io.EOF)
}

func (n *node) check(d *jsontext.Decoder) bool {
	switch d.PeekKind() {
	case '{':
		return (n.types == 0 || n.types&tObject != 0) && n.checkObject(d)
	case '[':
		return (n.types == 0 || n.types&tArray != 0) && n.checkArray(d)
	}
	val, err := d.ReadValue()
	if err != nil {
		return false
	}
	switch val.Kind() {
	case '"':
		return (n.types == 0 || n.types&tString != 0) && n.checkString(val)
	case '0':
		return n.checkNumber(val)
	case 't', 'f':
		return n.types == 0 || n.types&tBoolean != 0
	case 'n':
		return n.types == 0 || n.types&tNull != 0
	}
	return false
}

func (n *node) checkObject(d *jsontext.Decoder) bool {
	if _, err := d.ReadToken(); err != nil {
		return false
	}
	var seen uint64
	for d.PeekKind() == '"' {
		raw, err := d.ReadValue()
		if err != nil {
			return false
		}
		name, ok := unquoted(raw)
		if !ok {
			return false
		}
		if bit, req := n.required[string(name)]; req {
			seen |= 1 << bit
		}
		sub, known := n.props[string(name)]
		if !known {
			if n.noAdditional {
				return false
			}
			sub = n.additional
		}
		if sub == nil {
			if d.SkipValue() != nil {
				return false
			}
			continue
		}
		if !sub.check(d) {
			return false
		}
	}
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '}' {
		return false
	}
	return bits.OnesCount64(seen) == n.nRequired
}

func (n *node) checkArray(d *jsontext.Decoder) bool {
	if _, err := d.ReadToken(); err != nil {
		return false
	}
	count := 0
	for k := d.PeekKind(); k != ']'; k = d.PeekKind() {
		if k == 0 {
			return false
		}
		count++
		if n.items == nil {
			if d.SkipValue() != nil {
				return false
			}
		} else if !n.items.check(d) {
			return false
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return false
	}
	return (n.minItems < 0 || count >= n.minItems) && (n.maxItems < 0 || count <= n.maxItems)
}

func (n *node) checkString(raw jsontext.Value) bool {
	s, ok := unquoted(raw)
	if !ok {
		return false
	}
	if n.enum != nil && !n.enum[string(s)] {
		return false
	}
	if n.minLen >= 0 || n.maxLen >= 0 {
		l := utf8.RuneCount(s)
		if (n.minLen >= 0 && l < n.minLen) || (n.maxLen >= 0 && l > n.maxLen) {
			return false
		}
	}
	if n.pattern != nil && !n.pattern.Match(s) {
		return false
	}
	return !n.dateTime || dateTime(s)
}

func (n *node) checkNumber(raw jsontext.Value) bool {
	isInt := !bytes.ContainsAny(raw, ".eE")
	if n.types != 0 {
		if n.types&(tNumber|tInteger) == 0 {
			return false
		}
		if n.types&tNumber == 0 && !isInt {
			return false // 1.0 is an integer to JSON Schema: let the general validator say
		}
	}
	if n.min == nil && n.max == nil && n.exMin == nil && n.exMax == nil {
		return true
	}
	if !exactFloat(string(raw)) {
		return false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return false
	}
	return (n.min == nil || f >= *n.min) && (n.max == nil || f <= *n.max) &&
		(n.exMin == nil || f > *n.exMin) && (n.exMax == nil || f < *n.exMax)
}

// unquoted returns a JSON string's content, unescaping only when needed.
func unquoted(raw jsontext.Value) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	s, err := jsontext.AppendUnquote(nil, raw)
	return s, err == nil
}

// dateTime accepts the common RFC 3339 form YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
// with valid ranges. Rarer valid forms (lower-case t or z, a leap second) are
// left to the general validator.
func dateTime(s []byte) bool {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return false
	}
	num := func(i, j int) int {
		v := 0
		for _, c := range s[i:j] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return false
	}
	rest := s[19:]
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return false
		}
		rest = rest[i:]
	}
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, om := num(len(s)-5, len(s)-3), num(len(s)-2, len(s))
		return oh >= 0 && oh <= 23 && om >= 0 && om <= 59
	}
	return false
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
