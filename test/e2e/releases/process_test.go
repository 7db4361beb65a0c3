package releases

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

// built is the shipbot binary, built once per test binary.
var built struct {
	once sync.Once
	path string
	err  error
}

// shipbotBinary builds ./cmd/shipbot once per test binary, into the control
// plane's temporary directory, which the Stop at the end of TestMain removes.
func shipbotBinary(t *testing.T) string {
	t.Helper()
	cluster.Require(t, kc)
	built.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			built.err = fmt.Errorf("build shipbot: go command not found: %w", err)
			return
		}
		out := filepath.Join(kc.Dir(), "bin", "shipbot")
		cmd := exec.Command(goBin, "build", "-o", out, "github.com/shipbot/shipbot/cmd/shipbot")
		if b, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/shipbot: %w\n%s", err, b)
			return
		}
		built.path = out
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// freeAddr picks a loopback address nothing listens on, so that a restarted
// shipbot serves where the first one did.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// server is one `shipbot serve` child process.
type server struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process has exited and been waited for
}

// startProcess starts `shipbot serve --config cfg` and waits until addr answers
// /readyz. The process is killed when the test ends, and its log printed if
// the test failed.
func startProcess(t *testing.T, bin, cfg, addr, name string) *server {
	t.Helper()
	s := &server{t: t, name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, "serve", "--config", cfg)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	// Dies with the test binary, so a killed test leaves no shipbot behind.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", s.name, s.log, s.tail(80))
		}
	})
	s.waitReady(addr)
	return s
}

func (s *server) waitReady(addr string) {
	s.t.Helper()
	c := &http.Client{Timeout: time.Second}
	fixtures.Eventually(s.t, 30*time.Second, s.name+" /readyz", func() error {
		select {
		case <-s.done:
			s.t.Fatalf("%s exited before it was ready (%s):\n%s", s.name, s.cmd.ProcessState, s.tail(40))
		default:
		}
		resp, err := c.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz answered %d", resp.StatusCode)
		}
		return nil
	})
}

// kill9 sends SIGKILL and waits for the process to be gone: no shutdown
// code runs, the store is left as the last write made it.
func (s *server) kill9() {
	s.t.Helper()
	select {
	case <-s.done:
		s.t.Fatalf("%s exited before it was killed (%s):\n%s", s.name, s.cmd.ProcessState, s.tail(40))
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatal(err)
	}
	<-s.done
	ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		s.t.Fatalf("%s ended with %s, want killed by SIGKILL", s.name, s.cmd.ProcessState)
	}
}

// tail is the last n lines of the process's log.
func (s *server) tail(n int) string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// cli runs `shipbot args...` to completion and returns its stdout.
func cli(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// Only the command's name: the arguments may hold the API token.
		t.Fatalf("shipbot %s: %v\n%s", strings.Join(args[:min(2, len(args))], " "), err, stderr.String())
	}
	return stdout.String()
}
