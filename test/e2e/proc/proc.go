// Package proc runs the real shipbot binary for end-to-end tests: one
// `shipbot serve` process, or a set of HA replicas sharing a Lease, each
// killed with SIGKILL when a test wants a crash and at the test's end.
package proc

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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/test/fixtures"
)

// built is the shipbot binary, built once per test binary.
var built struct {
	once sync.Once
	path string
	err  error
}

// Binary builds ./cmd/shipbot once per test binary, into dir (the control
// plane's temporary directory, which TestMain removes at the end).
func Binary(t testing.TB, dir string) string {
	t.Helper()
	built.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			built.err = fmt.Errorf("build shipbot: go command not found: %w", err)
			return
		}
		out := filepath.Join(dir, "bin", "shipbot")
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

// FreeAddr picks a loopback address nothing listens on, so that a restarted
// shipbot serves where the first one did.
func FreeAddr(t testing.TB) string {
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

// Server is one `shipbot serve` child process.
type Server struct {
	t      testing.TB
	name   string
	Config string // the path of its shipbot.yaml
	cmd    *exec.Cmd
	log    string
	done   chan struct{} // closed once the process has exited and been waited for
}

// Start starts `shipbot serve --config cfg` and waits until addr answers
// /readyz. The process is killed when the test ends, and its log printed if
// the test failed.
func Start(t testing.TB, bin, cfg, addr, name string) *Server {
	t.Helper()
	return StartCommand(t, bin, "serve", cfg, addr, name)
}

// StartCommand is Start for `shipbot command --config cfg`, such as
// intake.
func StartCommand(t testing.TB, bin, command, cfg, addr, name string) *Server {
	t.Helper()
	s := &Server{t: t, name: name, Config: cfg, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, command, "--config", cfg)
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
			t.Logf("%s log (%s):\n%s", s.name, s.log, s.Tail(80))
		}
	})
	s.waitReady(addr)
	return s
}

func (s *Server) waitReady(addr string) {
	s.t.Helper()
	c := &http.Client{Timeout: time.Second}
	fixtures.Eventually(s.t, 30*time.Second, s.name+" /readyz", func() error {
		select {
		case <-s.done:
			s.t.Fatalf("%s exited before it was ready (%s):\n%s", s.name, s.cmd.ProcessState, s.Tail(40))
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

// Kill9 sends SIGKILL and waits for the process to be gone: no shutdown
// code runs, the store is left as the last write made it.
func (s *Server) Kill9() {
	s.t.Helper()
	select {
	case <-s.done:
		s.t.Fatalf("%s exited before it was killed (%s):\n%s", s.name, s.cmd.ProcessState, s.Tail(40))
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

// Signal sends sig to the process.
func (s *Server) Signal(sig os.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %s to %s: %v", sig, s.name, err)
	}
}

// Exited says whether the process has ended, and how.
func (s *Server) Exited() (bool, string) {
	select {
	case <-s.done:
		return true, s.cmd.ProcessState.String()
	default:
		return false, ""
	}
}

// Tail is the last n lines of the process's log.
func (s *Server) Tail(n int) string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// CLI runs `shipbot args...` to completion and returns its stdout.
func CLI(t testing.TB, bin string, args ...string) string {
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

// Replicas is a set of `shipbot serve` processes with store.backend
// kubernetes and one webhook inbox, each on its own address and working
// copy of the store.
type Replicas struct {
	t       testing.TB
	client  kubernetes.Interface
	InboxNS string
	Procs   map[string]*Server // the live ones, by address
}

// StartReplicas starts n replicas of config, a shipbot.yaml that says
// `listen: 127.0.0.1:0` and `store: {path: storePath}`: each listens on an
// address of its own, keeps its working copy at storePath-i, and takes its
// webhook inbox and Lease in namespace inboxNS of the config's cluster
// entry named cluster, which client reaches.
func StartReplicas(t testing.TB, bin string, client kubernetes.Interface, config, storePath, cluster, inboxNS string, n int) *Replicas {
	t.Helper()
	rs := &Replicas{t: t, client: client, InboxNS: inboxNS, Procs: map[string]*Server{}}
	for i := range n {
		addr := FreeAddr(t)
		text := strings.Replace(config, "listen: 127.0.0.1:0\n", "listen: "+addr+"\n", 1)
		text = strings.Replace(text, "store: {path: "+storePath+"}",
			fmt.Sprintf("store: {backend: kubernetes, path: %s-%d}\nwebhook: {maxBodyBytes: 786432, inbox: {cluster: %s, namespace: %s}}", storePath, i, cluster, inboxNS), 1)
		if text == config {
			t.Fatal("the config does not say listen: 127.0.0.1:0 and store: {path: ...}")
		}
		path := filepath.Join(t.TempDir(), fmt.Sprintf("shipbot-%d.yaml", i))
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		rs.Procs[addr] = Start(t, bin, path, addr, fmt.Sprintf("replica-%d", i))
	}
	return rs
}

// Leader waits for a live replica other than not to hold the Lease, and
// returns its address.
func (rs *Replicas) Leader(not string) string {
	rs.t.Helper()
	var addr string
	fixtures.Eventually(rs.t, 60*time.Second, "a replica leads", func() error {
		var err error
		addr, err = rs.Holder()
		if err != nil {
			return err
		}
		if _, live := rs.Procs[addr]; !live || addr == not {
			return fmt.Errorf("lease held by %q", addr)
		}
		return nil
	})
	return addr
}

// Holder is the address in the Lease's holder identity.
func (rs *Replicas) Holder() (string, error) {
	l, err := rs.client.CoordinationV1().Leases(rs.InboxNS).Get(context.Background(), serve.LeaseName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return "", fmt.Errorf("no holder")
	}
	_, addr, _ := strings.Cut(*l.Spec.HolderIdentity, "@")
	return addr, nil
}

// Other is a live replica's address that is not addr.
func (rs *Replicas) Other(addr string) string {
	for a := range rs.Procs {
		if a != addr {
			return a
		}
	}
	rs.t.Fatal("no other replica")
	return ""
}

// Kill kills the replica at addr with SIGKILL.
func (rs *Replicas) Kill(addr string) {
	rs.t.Helper()
	rs.Procs[addr].Kill9()
	delete(rs.Procs, addr)
}
