package bus

// ackInfo reads the stream sequence, storage time and pending count from a
// JetStream reply subject without allocating: $JS.ACK.<stream>.<consumer>.
// <delivered>.<sseq>.<cseq>.<tm>.<pending> (v1) or, from newer servers,
// $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>.<token>.
// Anything else is left to the client's own parser.
func ackInfo(reply string) (seq uint64, ts int64, pending uint64, ok bool) {
	const prefix = "$JS.ACK."
	if len(reply) < len(prefix) || reply[:len(prefix)] != prefix {
		return 0, 0, 0, false
	}
	var tok [12]string
	n, start := 0, 0
	for i := 0; i <= len(reply); i++ {
		if i == len(reply) || reply[i] == '.' {
			if n == len(tok) {
				return 0, 0, 0, false
			}
			tok[n] = reply[start:i]
			n++
			start = i + 1
		}
	}
	var base int
	switch {
	case n == 9:
		base = 0
	case n >= 11:
		base = 2
	default:
		return 0, 0, 0, false
	}
	seq, ok1 := parseUint(tok[base+5])
	t, ok2 := parseUint(tok[base+7])
	pending, ok3 := parseUint(tok[base+8])
	return seq, int64(t), pending, ok1 && ok2 && ok3
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
