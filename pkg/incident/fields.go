package incident

import (
	"encoding/json"
	"slices"
)

// valKind is the JSON kind of an extracted value.
type valKind uint8

const (
	valMissing valKind = iota
	valString
	valNumber
	valTrue
	valFalse
	valNull
	valOther // object or array
)

// value is one top-level field of an event's data, pointing into the JSON.
type value struct {
	kind    valKind
	escaped bool   // a string with escape sequences: use text()
	raw     []byte // string content without quotes, or the literal
}

// text is the value as a group key or summary shows it.
func (v *value) text() string {
	switch v.kind {
	case valString:
		if v.escaped {
			var s string
			if err := json.Unmarshal(append(append([]byte{'"'}, v.raw...), '"'), &s); err == nil {
				return s
			}
		}
		return string(v.raw)
	case valNumber, valTrue, valFalse:
		return string(v.raw)
	}
	return ""
}

// appendText appends the value's text to b without allocating in the
// common (unescaped) case.
func (v *value) appendText(b []byte) []byte {
	if v.kind == valString && v.escaped {
		return append(b, v.text()...)
	}
	if v.kind == valString || v.kind == valNumber || v.kind == valTrue || v.kind == valFalse {
		return append(b, v.raw...)
	}
	return b
}

// extract fills out[i] with the top-level member named names[i] of the JSON
// object data (valMissing when absent). The data was validated against its
// schema before, so it is well-formed JSON; the scan only needs to find
// members, skipping nested values, and never allocates.
func extract(data []byte, names []string, out []value) {
	for i := range out {
		out[i] = value{}
	}
	if len(names) == 0 {
		return
	}
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return
	}
	i++
	for {
		i = skipWS(data, i)
		if i >= len(data) || data[i] == '}' {
			return
		}
		if data[i] == ',' {
			i++
			continue
		}
		if data[i] != '"' {
			return
		}
		ks, ke, kesc := scanString(data, i)
		if ke < 0 {
			return
		}
		i = skipWS(data, ke+1)
		if i >= len(data) || data[i] != ':' {
			return
		}
		i = skipWS(data, i+1)
		slot := slotOf(names, data, ks, ke, kesc)
		end, v := scanValue(data, i)
		if end < 0 {
			return
		}
		if slot >= 0 {
			out[slot] = v
		}
		i = end
	}
}

// slotOf is the index in names of the member name data[ks:ke] (-1: none).
// A name with escapes is decoded first; one without is compared as it is,
// which does not allocate.
func slotOf(names []string, data []byte, ks, ke int, escaped bool) int {
	if escaped {
		var k string
		if json.Unmarshal(data[ks-1:ke+1], &k) != nil {
			return -1
		}
		return slices.Index(names, k)
	}
	for n, name := range names {
		if string(data[ks:ke]) == name {
			return n
		}
	}
	return -1
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the content bounds of the string starting at b[i]
// (a quote) and whether it holds escapes; end is the closing quote's index.
func scanString(b []byte, i int) (start, end int, escaped bool) {
	start = i + 1
	for j := start; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return start, j, escaped
		}
	}
	return start, -1, escaped
}

// scanValue returns the index after the value starting at b[i] and the value.
func scanValue(b []byte, i int) (int, value) {
	if i >= len(b) {
		return -1, value{}
	}
	switch c := b[i]; {
	case c == '"':
		s, e, esc := scanString(b, i)
		if e < 0 {
			return -1, value{}
		}
		return e + 1, value{kind: valString, escaped: esc, raw: b[s:e]}
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, e, _ := scanString(b, j)
				if e < 0 {
					return -1, value{}
				}
				j = e
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, value{kind: valOther, raw: b[i : j+1]}
				}
			}
		}
		return -1, value{}
	case c == 't' && i+4 <= len(b):
		return i + 4, value{kind: valTrue, raw: b[i : i+4]}
	case c == 'f' && i+5 <= len(b):
		return i + 5, value{kind: valFalse, raw: b[i : i+5]}
	case c == 'n' && i+4 <= len(b):
		return i + 4, value{kind: valNull}
	default:
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] >= '0' && b[j] <= '9') {
			j++
		}
		if j == i {
			return -1, value{}
		}
		return j, value{kind: valNumber, raw: b[i:j]}
	}
}
