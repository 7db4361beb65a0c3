// Package leader decides which of several shipbot replicas runs the
// engines: the one holding a coordination.k8s.io Lease, through client-go's
// leaderelection. Every replica serves webhooks, chat and the API; only
// the leader deploys, steps releases and reconciles.
//
// A leader that cannot renew its lease stops its engines before another
// replica may take the lease: RenewDeadline is shorter than LeaseDuration,
// and the engines' context ends when renewal gives up. On a clean shutdown
// the engines stop first and only then is the lease released, so that the
// next leader starts at once and never overlaps with this one.
package leader

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Defaults for Config. A replica killed while leading is replaced once the
// others have seen its lease unrenewed for LeaseDuration: at most about
// 10.4 s after its last renewal (the others notice a renewal, and try to
// acquire, one RetryPeriod plus jitter late), which keeps failover within
// 15 s. A leader that cannot renew stops acting RetryPeriod+RenewDeadline
// (6 s) after its last renewal, 2 s before anyone else may lead.
const (
	DefaultLeaseDuration = 8 * time.Second
	DefaultRenewDeadline = 5 * time.Second
	DefaultRetryPeriod   = 1 * time.Second
)

// Config says which Lease the replicas compete for and how.
type Config struct {
	Namespace string // the Lease's namespace, shipbot's own
	Name      string // the Lease's name, e.g. shipbot
	// Identity names this replica in the Lease; the pod name and a random
	// suffix when empty, so that a restarted pod never finds itself holding
	// its predecessor's lease.
	Identity      string
	LeaseDuration time.Duration // how long others wait on a lease not renewed
	RenewDeadline time.Duration // how long the leader retries a renewal before it stops acting
	RetryPeriod   time.Duration // how often a renewal or an acquisition is tried
	// OnChange, if set, is told when this replica starts or stops leading.
	OnChange func(leading bool)
	// KeepLeaseOnStop leaves the lease held when Run's context ends, as a
	// killed process would: for tests of failover, never in production,
	// where it only delays the next leader by LeaseDuration.
	KeepLeaseOnStop bool
}

// Validate reports what in c cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("leaderElection.namespace is empty"))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("leaderElection.name is empty"))
	}
	c = c.withDefaults()
	if c.RenewDeadline >= c.LeaseDuration {
		errs = append(errs, fmt.Errorf("leaderElection.renewDeadline %s must be shorter than leaseDuration %s, or a leader could still act after another took over", c.RenewDeadline, c.LeaseDuration))
	}
	if c.RetryPeriod <= 0 || c.RetryPeriod+c.RenewDeadline >= c.LeaseDuration {
		errs = append(errs, fmt.Errorf("leaderElection.retryPeriod %s plus renewDeadline %s must be shorter than leaseDuration %s: a leader stops acting that long after its last renewal", c.RetryPeriod, c.RenewDeadline, c.LeaseDuration))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	return c
}

// Elector campaigns for the Lease and runs the engines while it holds it.
type Elector struct {
	cfg     Config
	lock    *resourcelock.LeaseLock
	log     *slog.Logger
	leading atomic.Bool
	current atomic.Pointer[leaderelection.LeaderElector] // this term's
}

// New returns an Elector for cfg on the cluster client talks to.
func New(client kubernetes.Interface, cfg Config, log *slog.Logger) (*Elector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Identity == "" {
		cfg.Identity = DefaultIdentity()
	}
	if log == nil {
		log = slog.Default()
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}
	return &Elector{cfg: cfg, lock: lock, log: log.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)}, nil
}

// DefaultIdentity is the identity a replica takes when Config has none:
// its host name and a random suffix.
func DefaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "shipbot"
	}
	return host + "_" + rand.Text()[:8]
}

// Identity is the name this replica holds the Lease under.
func (e *Elector) Identity() string { return e.cfg.Identity }

// Leader is the identity of the replica last seen holding the lease, ""
// before one is seen.
func (e *Elector) Leader() string {
	if le := e.current.Load(); le != nil {
		return le.GetLeader()
	}
	return ""
}

// Leading reports whether this replica runs the engines now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Run campaigns until ctx ends. Each time this replica wins the Lease, lead
// runs with a context that ends when the lease is lost or ctx ends; Run
// waits for lead to return before it campaigns again, and before it
// releases the lease on the way out. lead should run until its context
// ends: if it returns earlier, the lease is given up and won again later.
func (e *Elector) Run(ctx context.Context, lead func(context.Context)) error {
	for ctx.Err() == nil {
		if err := e.term(ctx, lead); err != nil {
			return err
		}
	}
	return nil
}

// term is one campaign: it waits for the lease, leads, and returns once
// this replica has stopped leading and its elector has returned.
func (e *Elector) term(ctx context.Context, lead func(context.Context)) error {
	// The elector's context outlives ctx, so that on shutdown the engines
	// stop before the elector releases the lease.
	electCtx, stopElect := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElect()
	won := make(chan context.Context)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          e.lock,
		LeaseDuration: e.cfg.LeaseDuration,
		RenewDeadline: e.cfg.RenewDeadline,
		RetryPeriod:   e.cfg.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(held context.Context) {
				select {
				case won <- held:
				case <-held.Done():
				}
			},
			OnStoppedLeading: func() {},
		},
		ReleaseOnCancel: !e.cfg.KeepLeaseOnStop,
		Name:            e.cfg.Name,
	})
	if err != nil {
		return fmt.Errorf("leader election on lease %s/%s: %w", e.cfg.Namespace, e.cfg.Name, err)
	}
	e.current.Store(le)
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		le.Run(electCtx)
	}()
	select {
	case <-ctx.Done():
		stopElect()
		<-ran
		return nil
	case held := <-won:
		e.leadWhile(ctx, held, lead)
		stopElect() // lease lost or shutting down: release it if still held
		<-ran
		return nil
	}
}

// leadWhile runs lead until the lease is lost or ctx ends.
func (e *Elector) leadWhile(ctx, held context.Context, lead func(context.Context)) {
	leadCtx, cancel := context.WithCancel(held)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	started := time.Now()
	e.set(true)
	e.log.Info("leader: this replica leads; the engines run here")
	lead(leadCtx)
	e.set(false)
	why := "shutting down"
	switch {
	case held.Err() != nil:
		why = "lease lost"
	case ctx.Err() == nil:
		why = "the engines returned"
	}
	e.log.Info("leader: this replica stopped leading", "why", why, "led", time.Since(started).Round(time.Millisecond))
}

func (e *Elector) set(leading bool) {
	e.leading.Store(leading)
	if e.cfg.OnChange != nil {
		e.cfg.OnChange(leading)
	}
}
