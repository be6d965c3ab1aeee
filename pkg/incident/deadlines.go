package incident

// deadlines is the engine's queue of group deadlines: a binary min-heap
// ordered by (due, group id), so that simultaneous deadlines are handled in
// the same order in every fold.
//
// A group's deadline moves at most of its events, so entries are not
// updated in place. The group holds its deadline (g.due) and the deadline
// of its live entry (g.heapDue); set pushes an entry only when the deadline
// moved earlier than the live one, and an entry is checked against its
// group when it reaches the top: dropped if superseded, the group retired
// or its deadline gone, pushed again if the deadline moved later.
type deadlines struct {
	h []deadline
}

// deadline is one entry of the heap.
type deadline struct {
	due int64
	gid uint64
	g   *group
}

// set queues g for its deadline g.due (0: none).
func (d *deadlines) set(g *group) {
	if g.due == 0 || g.heapDue != 0 && g.heapDue <= g.due {
		return
	}
	g.heapDue = g.due
	d.push(deadline{due: g.due, gid: g.id, g: g})
}

// next returns the earliest deadline and whether there is one.
func (d *deadlines) next() (int64, bool) {
	for len(d.h) > 0 {
		top := d.h[0]
		g := top.g
		switch {
		case g.dead || top.due != g.heapDue: // retired, or superseded by an earlier entry
			d.pop()
		case g.due == 0: // the group no longer waits
			d.pop()
			g.heapDue = 0
		case g.due > top.due: // the deadline moved later
			d.pop()
			g.heapDue = 0
			d.set(g)
		default:
			return top.due, true
		}
	}
	return 0, false
}

// take removes and returns the group of the earliest deadline if it is at
// or before t (nil otherwise). The group's deadline is then g.due.
func (d *deadlines) take(t int64) *group {
	due, ok := d.next()
	if !ok || due > t {
		return nil
	}
	g := d.pop().g
	g.heapDue = 0
	return g
}

func (d *deadlines) less(i, j int) bool {
	h := d.h
	return h[i].due < h[j].due || h[i].due == h[j].due && h[i].gid < h[j].gid
}

func (d *deadlines) push(x deadline) {
	d.h = append(d.h, x)
	i := len(d.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !d.less(i, p) {
			break
		}
		d.h[i], d.h[p] = d.h[p], d.h[i]
		i = p
	}
}

func (d *deadlines) pop() deadline {
	s := d.h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = deadline{}
	d.h = s[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && d.less(l, m) {
			m = l
		}
		if r < n && d.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		d.h[i], d.h[m] = d.h[m], d.h[i]
		i = m
	}
	return top
}
