package leader

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/shipbot/shipbot/test/cluster"
)

var testCluster *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{}, &testCluster) }

// Short lease settings, so that the tests take seconds; the failover time
// with the defaults is measured by make bench.
var fast = Config{LeaseDuration: 2 * time.Second, RenewDeadline: 1200 * time.Millisecond, RetryPeriod: 300 * time.Millisecond}

// replicas are electors on one Lease; they record who led when, and how
// many led at once at most.
type replicas struct {
	t       *testing.T
	cfg     Config
	client  kubernetes.Interface
	mu      sync.Mutex
	now     int // how many lead at this moment
	most    int
	order   []string // identities, in the order they started leading
	started chan string
	// electors by identity
	electors map[string]*Elector
}

func newReplicas(t *testing.T) *replicas {
	cluster.Require(t, testCluster)
	client, err := kubernetes.NewForConfig(testCluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := fast
	cfg.Namespace, cfg.Name = testCluster.NewNamespace(t), "shipbot"
	return &replicas{t: t, cfg: cfg, client: client, started: make(chan string, 16), electors: map[string]*Elector{}}
}

// start runs one replica until the returned stop is called. A crash
// leaves its lease held, as a killed process does.
func (rs *replicas) start(id string, crash bool) (stop func()) {
	cfg := rs.cfg
	cfg.Identity, cfg.KeepLeaseOnStop = id, crash
	e, err := New(rs.client, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.electors[id] = e
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, rs.lead(id)) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			rs.t.Errorf("replica %s: %v", id, err)
		}
	}
}

func (rs *replicas) lead(id string) func(context.Context) {
	return func(ctx context.Context) {
		rs.mu.Lock()
		rs.now++
		rs.most = max(rs.most, rs.now)
		rs.order = append(rs.order, id)
		rs.mu.Unlock()
		rs.started <- id
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // engines take a moment to stop
		rs.mu.Lock()
		rs.now--
		rs.mu.Unlock()
	}
}

// next waits for a replica to start leading and says which.
func (rs *replicas) next(within time.Duration) (string, time.Duration) {
	rs.t.Helper()
	start := time.Now()
	select {
	case id := <-rs.started:
		return id, time.Since(start)
	case <-time.After(within):
		rs.t.Fatalf("no replica started leading within %s", within)
		return "", 0
	}
}

func (rs *replicas) holder() string {
	rs.t.Helper()
	l, err := rs.client.CoordinationV1().Leases(rs.cfg.Namespace).Get(context.Background(), rs.cfg.Name, metav1.GetOptions{})
	if err != nil {
		rs.t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// Of three replicas one leads; when it is killed (its lease left held),
// another leads once the lease has expired, never two at once.
func TestAnotherReplicaLeadsAfterTheLeaderIsKilled(t *testing.T) {
	rs := newReplicas(t)
	stops := map[string]func(){}
	for i := range 3 {
		id := fmt.Sprintf("replica-%d", i)
		stops[id] = rs.start(id, true)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	first, _ := rs.next(10 * time.Second)
	if h := rs.holder(); h != first {
		t.Errorf("lease held by %q, want the leader %q", h, first)
	}
	for id, e := range rs.electors {
		if err := waitFor(5*time.Second, func() bool { return e.Leader() == first }); err != nil {
			t.Errorf("replica %s sees %q as the leader, want %q", id, e.Leader(), first)
		}
	}
	killed := time.Now()
	stops[first]()
	delete(stops, first)
	second, _ := rs.next(10 * time.Second)
	took := time.Since(killed)
	if second == first {
		t.Fatalf("the killed replica %s leads again", first)
	}
	// Nobody may take a lease before it has gone unrenewed for
	// LeaseDuration; it was last renewed at most RetryPeriod before the kill.
	if took < rs.cfg.LeaseDuration-rs.cfg.RetryPeriod {
		t.Errorf("%s led %s after %s was killed, before its lease of %s expired", second, took, first, rs.cfg.LeaseDuration)
	}
	t.Logf("failover %s → %s in %s (lease %s, retry %s)", first, second, took.Round(time.Millisecond), rs.cfg.LeaseDuration, rs.cfg.RetryPeriod)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.most != 1 {
		t.Errorf("%d replicas led at once", rs.most)
	}
}

// A leader that shuts down stops its engines, then releases the lease, so
// another leads at once rather than after LeaseDuration.
func TestAStoppingLeaderHandsOverAtOnce(t *testing.T) {
	rs := newReplicas(t)
	rs.cfg.LeaseDuration, rs.cfg.RenewDeadline = 30*time.Second, 20*time.Second
	stopA := rs.start("a", false)
	if id, _ := rs.next(10 * time.Second); id != "a" {
		t.Fatalf("%s leads, want a", id)
	}
	stopB := rs.start("b", false)
	defer stopB()
	stopped := time.Now()
	stopA()
	id, _ := rs.next(15 * time.Second)
	took := time.Since(stopped)
	if id != "b" {
		t.Fatalf("%s leads, want b", id)
	}
	if took >= rs.cfg.LeaseDuration {
		t.Errorf("b led %s after a stopped: a did not release its lease", took)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.most != 1 {
		t.Errorf("%d replicas led at once: a's engines had not stopped when b started", rs.most)
	}
}

// A leader that cannot reach the apiserver stops acting once its renewal
// deadline has passed, and leads again when the apiserver is back.
func TestALeaderCutOffFromTheAPIServerStopsActing(t *testing.T) {
	rs := newReplicas(t)
	stop := rs.start("a", false)
	defer stop()
	rs.next(10 * time.Second)
	var stoppedAt atomic.Int64
	go func() {
		for rs.leadingNow() {
			time.Sleep(20 * time.Millisecond)
		}
		stoppedAt.Store(time.Now().UnixNano())
	}()
	cut := time.Now()
	if err := testCluster.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	deadline := cut.Add(rs.cfg.RetryPeriod + rs.cfg.RenewDeadline + 5*time.Second)
	for stoppedAt.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testCluster.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if stoppedAt.Load() == 0 {
		t.Fatalf("the leader still acted %s after the apiserver went away", time.Since(cut))
	}
	t.Logf("stopped acting %s after the apiserver went away", time.Unix(0, stoppedAt.Load()).Sub(cut).Round(time.Millisecond))
	if id, _ := rs.next(30 * time.Second); id != "a" {
		t.Fatalf("%s leads, want a again", id)
	}
}

func (rs *replicas) leadingNow() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.now > 0
}

func TestConfigRefusesSettingsThatLetTwoLead(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Namespace: "shipbot", Name: "shipbot"}, ""},
		{Config{Name: "shipbot"}, "namespace is empty"},
		{Config{Namespace: "shipbot", Name: "shipbot", LeaseDuration: 5 * time.Second, RenewDeadline: 5 * time.Second}, "renewDeadline 5s must be shorter than leaseDuration 5s"},
		{Config{Namespace: "shipbot", Name: "shipbot", LeaseDuration: 10 * time.Second, RenewDeadline: 8 * time.Second, RetryPeriod: 2 * time.Second}, "retryPeriod 2s plus renewDeadline 8s must be shorter than leaseDuration 10s"},
	} {
		err := c.cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want one saying %q", c.cfg, err, c.want)
		}
	}
}

func waitFor(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
