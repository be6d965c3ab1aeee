package incident

import (
	"slices"
	"testing"
)

func TestDeadlines(t *testing.T) {
	type step struct {
		gid  int   // the group (1-based)
		due  int64 // its new deadline (0: none)
		dead bool  // retire it instead
	}
	tests := []struct {
		name  string
		steps []step
		until int64
		want  []int // groups taken up to until, in order
		next  int64 // the next deadline after that
	}{
		{"by time", []step{{1, 30, false}, {2, 10, false}, {3, 20, false}}, 100, []int{2, 3, 1}, 0},
		{"simultaneous by group", []step{{3, 10, false}, {1, 10, false}, {2, 10, false}}, 10, []int{1, 2, 3}, 0},
		{"only up to until", []step{{1, 10, false}, {2, 20, false}, {3, 30, false}}, 20, []int{1, 2}, 30},
		{"moved earlier", []step{{1, 30, false}, {2, 20, false}, {1, 10, false}}, 100, []int{1, 2}, 0},
		{"moved later", []step{{1, 10, false}, {2, 20, false}, {1, 30, false}}, 25, []int{2}, 30},
		{"gone", []step{{1, 10, false}, {2, 20, false}, {1, 0, false}}, 100, []int{2}, 0},
		{"retired", []step{{1, 10, false}, {2, 20, false}, {2, 0, true}}, 100, []int{1}, 0},
		{"nothing due", []step{{1, 50, false}}, 40, nil, 50},
		{"empty", nil, 100, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d deadlines
			groups := map[int]*group{}
			for _, s := range tt.steps {
				g := groups[s.gid]
				if g == nil {
					g = &group{id: uint64(s.gid)}
					groups[s.gid] = g
				}
				if s.dead {
					g.dead = true
					continue
				}
				g.due = s.due
				d.set(g)
			}
			var got []int
			for g := d.take(tt.until); g != nil; g = d.take(tt.until) {
				if g.due > tt.until {
					t.Fatalf("took group %d due at %d, after %d", g.id, g.due, tt.until)
				}
				got = append(got, int(g.id))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("taken %v, want %v", got, tt.want)
			}
			if next, _ := d.next(); next != tt.next {
				t.Errorf("next %d, want %d", next, tt.next)
			}
		})
	}
}

// A group taken and set again for a later deadline is taken again then,
// whatever stale entries it left behind.
func TestDeadlinesRescheduledGroup(t *testing.T) {
	var d deadlines
	g := &group{id: 1, due: 30}
	d.set(g)
	g.due = 10 // earlier: a second entry, the first one stale
	d.set(g)
	if got := d.take(10); got != g {
		t.Fatalf("take(10) = %v, want the group", got)
	}
	g.due = 30 // the same deadline as its stale entry
	d.set(g)
	if got := d.take(30); got != g {
		t.Fatalf("take(30) = %v, want the group", got)
	}
	if got := d.take(1 << 62); got != nil {
		t.Fatalf("taken twice: %v", got)
	}
	if _, ok := d.next(); ok || len(d.h) != 0 {
		t.Fatalf("entries left: %v", d.h)
	}
}
