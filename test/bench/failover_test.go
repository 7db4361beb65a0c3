package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/shipbot/shipbot/deployer/leader"
	"github.com/shipbot/shipbot/test/cluster"
)

// An elector process is this test binary run again with these variables:
// it campaigns with the default lease settings and prints "leading" when
// it leads, until it is killed.
const (
	envElector    = "SHIPBOT_BENCH_ELECTOR"
	envKubeconfig = "SHIPBOT_BENCH_KUBECONFIG"
	envLeaseNS    = "SHIPBOT_BENCH_LEASE_NAMESPACE"
)

func TestMain(m *testing.M) {
	if id := os.Getenv(envElector); id != "" {
		os.Exit(runElector(id))
	}
	os.Exit(m.Run())
}

func runElector(id string) int {
	rc, err := clientcmd.BuildConfigFromFlags("", os.Getenv(envKubeconfig))
	if err == nil {
		var client kubernetes.Interface
		if client, err = kubernetes.NewForConfig(rc); err == nil {
			var e *leader.Elector
			e, err = leader.New(client, leader.Config{Namespace: os.Getenv(envLeaseNS), Name: "shipbot", Identity: id}, slog.New(slog.DiscardHandler))
			if err == nil {
				err = e.Run(context.Background(), func(ctx context.Context) {
					fmt.Println("leading")
					<-ctx.Done()
				})
			}
		}
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// Failover is held to 15 s from the leader's death to another leading.
const targetFailover = 15 * time.Second

// failovers is how many leaders BenchmarkFailover kills per run.
const failovers = 5

// BenchmarkFailover kills (SIGKILL) the leading one of three elector
// processes, with shipbot's default lease settings, and times how long
// until another leads, failovers times per run, on the local control plane.
func BenchmarkFailover(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Stop() }) // after the namespace's cleanup
	ns := c.NewNamespace(b)
	leads := make(chan string, 16)
	procs := map[string]*exec.Cmd{}
	start := func(id string) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envElector+"="+id, envKubeconfig+"="+c.KubeconfigPath(), envLeaseNS+"="+ns)
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		procs[id] = cmd
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "leading" {
					leads <- id
				}
			}
		}()
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	next := 0
	spawn := func() {
		start(fmt.Sprintf("elector-%d", next))
		next++
	}
	for range 3 {
		spawn()
	}
	wait := func() string {
		select {
		case id := <-leads:
			return id
		case <-time.After(time.Minute):
			b.Fatal("no elector led within a minute")
			return ""
		}
	}
	current := wait()
	var took []time.Duration
	b.ResetTimer()
	for range b.N * failovers {
		p := procs[current]
		killed := time.Now()
		if err := p.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		_ = p.Wait()
		delete(procs, current)
		next := wait()
		took = append(took, time.Since(killed))
		current = next
		spawn() // three again
	}
	b.StopTimer()
	slices.Sort(took)
	worst := took[len(took)-1]
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(took[len(took)/2].Seconds(), "p50-failover-s")
	b.ReportMetric(worst.Seconds(), "max-failover-s")
	fmt.Printf("\nleader killed → another leads, %d times, lease %s / renew %s / retry %s: median %s, max %s (target <= %s: %s)\n",
		len(took), leader.DefaultLeaseDuration, leader.DefaultRenewDeadline, leader.DefaultRetryPeriod,
		took[len(took)/2].Round(time.Millisecond), worst.Round(time.Millisecond), targetFailover, verdict(worst <= targetFailover))
}
