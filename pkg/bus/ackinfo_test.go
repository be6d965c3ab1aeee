package bus

import "testing"

func TestAckInfoReadsBothReplyFormats(t *testing.T) {
	tests := []struct {
		reply            string
		seq, ts, pending uint64
		ok               bool
	}{
		{"$JS.ACK.EVENTS.c1.1.42.40.1795378161105307038.7", 42, 1795378161105307038, 7, true},
		{"$JS.ACK._.hash.EVENTS.c1.1.42.40.1795378161105307038.7.rand", 42, 1795378161105307038, 7, true},
		{"$JS.ACK._.hash.EVENTS.c1.1.42.40.1795378161105307038.7", 42, 1795378161105307038, 7, true},
		{"$JS.ACK.EVENTS.c1.1.x.40.1.7", 0, 0, 0, false},
		{"_INBOX.abc", 0, 0, 0, false},
		{"$JS.ACK.EVENTS.c1.1.42", 0, 0, 0, false},
	}
	for _, tc := range tests {
		seq, ts, pending, ok := ackInfo(tc.reply)
		if ok != tc.ok || ok && (seq != tc.seq || uint64(ts) != tc.ts || pending != tc.pending) {
			t.Errorf("%s: %d %d %d %v", tc.reply, seq, ts, pending, ok)
		}
	}
}
