// Package redistest runs a redis-server process on a loopback port for the
// tests of the Redis-backed packages (redisstore, redisrate):
// started on a free port, stopped and started again on the same port to
// play an outage, killed when the test ends. A test is skipped only when
// redis-server is not installed (.ci/run installs it).
//
// It is internal to mcpguard and used by tests only. Dependencies: the
// standard library, github.com/redis/go-redis/v9 (to wait until the server
// answers) and github.com/stretchr/testify/require.
package redistest

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Server is a redis-server owned by a test.
type Server struct {
	// Addr is host:port on 127.0.0.1; Port is its port.
	Addr string
	Port int

	t   testing.TB
	bin string
	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs redis-server on a free loopback port, waits until it answers
// and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found in PATH: install it (apt-get install redis-server) to run the Redis tests; .ci/run does")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, t: t, bin: bin}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start runs the server (again, empty: no persistence) on its port and
// waits until it answers.
func (s *Server) Start() {
	t := s.t
	t.Helper()
	cmd := exec.Command(s.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(s.Port),
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	// Keep the pipe drained and its output for the failure message.
	var mu sync.Mutex
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("redis-server on %s did not answer: %v\n%s", s.Addr, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it; safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}
