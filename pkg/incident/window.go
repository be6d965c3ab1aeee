package incident

// bucket counts one resolution step of a sliding window.
type bucket struct {
	failed, total uint32
	firstSeq      uint64
}

// window is a ring of buckets aligned on absolute multiples of the step, so
// that the same events always fall in the same buckets.
type window struct {
	b      []bucket
	head   int64 // absolute index of the newest bucket (time / step)
	failed int
	total  int
}

func (w *window) init(n int) { w.b = make([]bucket, n); w.head = -1 << 62 }

// roll drops the buckets that left the window at absolute index idx.
func (w *window) roll(idx int64) {
	if idx <= w.head {
		return
	}
	n := int64(len(w.b))
	if idx-w.head >= n {
		clear(w.b)
		w.failed, w.total = 0, 0
	} else {
		for i := w.head + 1; i <= idx; i++ {
			s := &w.b[mod(i, n)]
			w.failed -= int(s.failed)
			w.total -= int(s.total)
			*s = bucket{}
		}
	}
	w.head = idx
}

func (w *window) add(idx int64, failed bool, seq uint64) {
	w.roll(idx)
	s := &w.b[mod(idx, int64(len(w.b)))]
	if s.total == 0 {
		s.firstSeq = seq
	}
	s.total++
	w.total++
	if failed {
		s.failed++
		w.failed++
	}
}

// oldest returns the absolute index of the oldest non-empty bucket.
func (w *window) oldest() (int64, bool) {
	if w.total == 0 {
		return 0, false
	}
	n := int64(len(w.b))
	for i := w.head - n + 1; i <= w.head; i++ {
		if w.b[mod(i, n)].total > 0 {
			return i, true
		}
	}
	return 0, false
}

func (w *window) firstSeq() uint64 {
	if i, ok := w.oldest(); ok {
		return w.b[mod(i, int64(len(w.b)))].firstSeq
	}
	return 0
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// floorDiv is the bucket index of time t.
func floorDiv(t, step int64) int64 {
	q := t / step
	if t%step != 0 && t < 0 {
		q--
	}
	return q
}
