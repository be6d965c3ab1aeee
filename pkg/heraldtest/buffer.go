package heraldtest

import (
	"strings"
	"sync"
)

// Buffer is a text sink several goroutines may write at once (a
// platform's log, the console sink) and a test reads.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
