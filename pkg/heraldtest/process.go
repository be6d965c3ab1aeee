package heraldtest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is a server process a test started in its own process group, so
// that stopping it also reaches the children it forks (RabbitMQ's start
// script runs beam.smp; PostgreSQL's postmaster runs its backends).
type daemon struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	err    error         // its exit status, once exited is closed
}

// startDaemon starts cmd in a new process group; the caller has set its
// environment and output.
func startDaemon(cmd *exec.Cmd) (*daemon, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// stop sends sig to the process and, once it has exited or grace has
// passed, SIGKILL to its whole group: no child outlives the test.
func (d *daemon) stop(sig syscall.Signal, grace time.Duration) {
	pgid := d.cmd.Process.Pid
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-d.exited
}

// randomToken is a random lower-case alphanumeric string, usable in node
// names, user names, passwords and URLs without escaping.
func randomToken() string {
	return strings.ToLower(rand.Text())
}

// logTail is the end of a server's log files, for a failure message.
func logTail(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		b.WriteString("--- " + p + "\n")
		b.Write(bytes.TrimSpace(data))
		b.WriteString("\n")
	}
	return b.String()
}

// mustBinary fails the test, naming the Debian package, when path is not
// an executable: CI installs the package (.ci/run), so a missing one is an
// error there, and a developer without it sees what to install.
func mustBinary(t testing.TB, path, pkg string) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s not found: this test needs Debian's %s package (apt-get install %s; .ci/run installs it)", path, pkg, pkg)
	}
}
