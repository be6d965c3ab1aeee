package heraldtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresBin is where Debian's postgresql package keeps the newest
// installed server's binaries (/usr/lib/postgresql/<major>/bin: 15 on
// Debian 12); the 15 path when none is installed, for the error message.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestMajor := "/usr/lib/postgresql/15/bin", -1
	for _, d := range dirs {
		major, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err == nil && major > bestMajor {
			best, bestMajor = d, major
		}
	}
	return best
}

// Postgres is a PostgreSQL server a test started from Debian's binaries:
// its own data directory, a 127.0.0.1 port, its Unix socket in that
// directory, fsync off.
type Postgres struct {
	// DSN is postgres://user:pass@127.0.0.1:port/herald?sslmode=disable for
	// a superuser with a random password and its database, herald.
	DSN     string
	Dir     string // the data directory is Dir/data
	LogFile string
}

// StartPostgres initdbs a cluster, starts PostgreSQL on it, returns once
// the database answers, and stops the server (immediate shutdown, then
// SIGKILL to its process group) when the test ends. It fails the test when
// PostgreSQL 15 is not installed.
//
// PostgreSQL refuses to run as root, so under root (CI, this machine) the
// server runs as nobody, in a directory it owns; otherwise as the test.
// A start measured 1.1 to 2 s (initdb, then the server), two at once.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := postgresBin()
	mustBinary(t, filepath.Join(bin, "postgres"), "postgresql")
	start := time.Now()
	dir, cred := postgresDir(t)
	pass := randomToken()
	port := routePorts(t, 1)[0]
	p := &Postgres{
		DSN:     fmt.Sprintf("postgres://herald:%s@127.0.0.1:%d/herald?sslmode=disable", pass, port),
		Dir:     dir,
		LogFile: filepath.Join(dir, "postgres.log"),
	}
	data := filepath.Join(dir, "data")
	pwfile := filepath.Join(dir, "pwfile")
	writeFile(t, pwfile, pass+"\n")
	chown(t, pwfile, cred)
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "herald",
		"--pwfile="+pwfile, "--auth-host=scram-sha-256", "--auth-local=trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}

	log, err := os.Create(p.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	d, err := startDaemon(cmd)
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	// SIGQUIT is pg_ctl stop -m immediate: the data is the test's, to throw away.
	t.Cleanup(func() { d.stop(syscall.SIGQUIT, 10*time.Second) })
	p.waitReady(t, d)
	t.Logf("PostgreSQL ready on 127.0.0.1:%d in %v", port, time.Since(start).Round(time.Millisecond))
	return p
}

// postgresDir makes the server's directory, removed when the test ends,
// and, under root, the credential of the unprivileged user (nobody) that
// owns it and runs the server. t.TempDir will not do for that: its parent
// is closed to other users.
func postgresDir(t testing.TB) (string, *syscall.Credential) {
	t.Helper()
	dir, err := os.MkdirTemp("", "heraldtest-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Getuid() != 0 {
		return dir, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("PostgreSQL cannot run as root and there is no user nobody: %v", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	chown(t, dir, cred)
	return dir, cred
}

// chown gives path to cred's user; without a credential (not root) there
// is nothing to do.
func chown(t testing.TB, path string, cred *syscall.Credential) {
	t.Helper()
	if cred == nil {
		return
	}
	if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
}

// waitReady connects until the database answers, the server exits, or 30 s
// pass. It also creates the database herald: initdb made only postgres.
func (p *Postgres) waitReady(t testing.TB, d *daemon) {
	t.Helper()
	admin := strings.Replace(p.DSN, "/herald?", "/postgres?", 1)
	deadline := time.After(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			_, err = conn.Exec(ctx, "CREATE DATABASE herald")
			conn.Close(ctx)
			cancel()
			if err != nil {
				t.Fatalf("create database: %v", err)
			}
			return
		}
		cancel()
		select {
		case <-d.exited:
			t.Fatalf("postgres exited before accepting connections (%v):\n%s", d.err, logTail(p.LogFile))
		case <-deadline:
			t.Fatalf("postgres not accepting connections after 30s (last: %v):\n%s", err, logTail(p.LogFile))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Conn connects to the database, closed when the test ends.
func (p *Postgres) Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
