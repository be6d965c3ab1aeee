package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"unicode"

	"github.com/nats-io/nats-server/v2/server"
)

// serverLogger sends nats-server's log lines to slog. The server's
// multi-line notices (the start banner with its version and ids, the
// trusted operators, JetStream's ASCII art and its limits) become one line
// each, their "Key: value" lines as attributes: a terminal shows
// "Starting nats-server version=2.15.2 name=n1 …", not 14 lines.
type serverLogger struct {
	l *slog.Logger

	mu      sync.Mutex
	pending string // a notice whose detail lines are being collected
	attrs   []any
}

// NewServerLogger is the logger for a nats-server (embedded, or a test's
// cluster node) that writes to l.
func NewServerLogger(l *slog.Logger) server.Logger { return &serverLogger{l: l} }

// blockHeads are the notices nats-server follows with detail lines.
var blockHeads = map[string]bool{"Starting nats-server": true, "Trusted Operators": true, "Starting JetStream": true}

func (s *serverLogger) Noticef(f string, v ...any) {
	line := fmt.Sprintf(f, v...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != "" && isDetail(line) {
		if k, val, ok := detailAttr(line); ok {
			s.attrs = append(s.attrs, k, val)
		}
		return // art, blank lines, separators and the docs URL are dropped
	}
	s.flush()
	head := strings.TrimSpace(line)
	if blockHeads[head] {
		s.pending, s.attrs = head, nil
		return
	}
	s.l.Info(head)
}

func (s *serverLogger) Warnf(f string, v ...any)  { s.emit(slog.LevelWarn, f, v) }
func (s *serverLogger) Fatalf(f string, v ...any) { s.emit(slog.LevelError, f, v) }
func (s *serverLogger) Errorf(f string, v ...any) { s.emit(slog.LevelError, f, v) }
func (s *serverLogger) Debugf(f string, v ...any) { s.emit(slog.LevelDebug, f, v) }
func (s *serverLogger) Tracef(f string, v ...any) { s.emit(slog.LevelDebug, f, v) }

func (s *serverLogger) emit(level slog.Level, f string, v []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	s.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(f, v...)))
}

// flush logs the collected notice, if any. s.mu is held.
func (s *serverLogger) flush() {
	if s.pending == "" {
		return
	}
	s.l.Info(s.pending, s.attrs...)
	s.pending, s.attrs = "", nil
}

// isDetail: a line that belongs to the notice before it (indented, blank,
// a separator or ASCII art).
func isDetail(line string) bool {
	return line == "" || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "|") || strings.HasPrefix(line, "-")
}

// detailAttr reads "  Max Memory:  1.00 GB" as maxMemory="1.00 GB".
func detailAttr(line string) (string, string, bool) {
	k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.HasPrefix(v, "//") || strings.ContainsFunc(k, func(r rune) bool { return !unicode.IsLetter(r) && r != ' ' }) {
		return "", "", false
	}
	words := strings.Fields(strings.ToLower(k))
	for i := 1; i < len(words); i++ {
		words[i] = strings.ToUpper(words[i][:1]) + words[i][1:]
	}
	return strings.Join(words, ""), strings.Trim(strings.TrimSpace(v), `"`), true
}
