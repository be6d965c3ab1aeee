package event

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The fast check may only ever accept what the general validator accepts.
func assertSound(t testing.TB, d *Def, raw []byte) {
	t.Helper()
	if d.fast == nil || !d.fast.Valid(raw) {
		return
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: fast check accepted malformed JSON %s", d.Type, raw)
	}
	if err := d.schema.Validate(v); err != nil {
		t.Fatalf("%s: fast check accepted %s, which the schema rejects: %v", d.Type, raw, err)
	}
}

func TestFastSchemaCoversEveryCatalogTypeAndAcceptsItsExample(t *testing.T) {
	c, err := NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range c.Defs() {
		if d.fast == nil {
			t.Errorf("%s: schema is outside the fast subset; every event of this type takes the slow path", d.Type)
			continue
		}
		if !d.fast.Valid(d.Example) {
			t.Errorf("%s: fast check rejects the schema's own example", d.Type)
		}
	}
}

var oddValues = []any{
	nil, true, false, 0, -1, 1, 1.0, 1.5, math.Copysign(0, -1), 1e2, 1e300, json.Number("12345678901234567890"), json.Number("1.0"), json.Number("-0"), json.Number("1E1"), "", "x",
	strings.Repeat("y", 70), strings.Repeat("é", 30), "shop", "Shop!", "P1", "P4", "dlt", "ok",
	"2026-11-22T10:00:00Z", "2026-11-22T10:00:00.123+05:30", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z",
	"2026-11-22t10:00:00z", "2026-11-22T23:59:60Z", "2026-13-01T00:00:00Z", "2026-11-22T10:00:00+24:00",
	"2026-11-22 10:00:00Z", "+919876543210", "+91******3210", "inc-0123456789abcdef", "a\u0000b",
	[]any{}, []any{"a"}, []any{1}, map[string]any{}, map[string]any{"k": "v"}, map[string]any{"k": 1},
}

func mutate(r *rand.Rand, v any, depth int) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = val
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		switch op := r.IntN(4); {
		case op == 0 && len(keys) > 0:
			delete(m, keys[r.IntN(len(keys))])
		case op == 1:
			m["unexpected"] = oddValues[r.IntN(len(oddValues))]
		case len(keys) > 0:
			k := keys[r.IntN(len(keys))]
			if depth < 3 && r.IntN(2) == 0 {
				m[k] = mutate(r, m[k], depth+1)
			} else {
				m[k] = oddValues[r.IntN(len(oddValues))]
			}
		}
		return m
	case []any:
		s := slices.Clone(x)
		switch {
		case len(s) > 0 && r.IntN(2) == 0:
			i := r.IntN(len(s))
			s[i] = mutate(r, s[i], depth+1)
		default:
			s = append(s, oddValues[r.IntN(len(oddValues))])
		}
		return s
	}
	return oddValues[r.IntN(len(oddValues))]
}

func TestFastSchemaIsSoundOnMutatedExamples(t *testing.T) {
	c, err := NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	accepted, rejected := 0, 0
	for _, d := range c.Defs() {
		var ex any
		if err := json.Unmarshal(d.Example, &ex); err != nil {
			t.Fatal(err)
		}
		for range 2000 {
			v := ex
			for range 1 + r.IntN(3) {
				v = mutate(r, v, 0)
			}
			raw, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			assertSound(t, d, raw)
			if d.fast.Valid(raw) {
				accepted++
			} else {
				rejected++
			}
		}
	}
	// Both outcomes must occur, or the test proves nothing.
	if accepted < 1000 || rejected < 1000 {
		t.Fatalf("mutations too weak: %d accepted, %d rejected", accepted, rejected)
	}
}

func FuzzFastSchemaIsSound(f *testing.F) {
	c, err := NewCatalog()
	if err != nil {
		f.Fatal(err)
	}
	for i, d := range c.Defs() {
		f.Add(i, []byte(d.Example))
	}
	f.Add(0, []byte(`{"app":"shop"} {}`))
	f.Add(1, []byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, i int, raw []byte) {
		defs := c.Defs()
		d := defs[(i%len(defs)+len(defs))%len(defs)]
		assertSound(t, d, raw)
	})
}
