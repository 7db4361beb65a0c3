package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// StopAPIServer stops kube-apiserver, as an outage of the control plane
// would: etcd, the controllers, the scheduler and kwok keep running, and
// clients get connection refused until RestartAPIServer.
func (c *Cluster) StopAPIServer() error {
	p := c.proc("kube-apiserver")
	if p == nil {
		return errors.New("stop kube-apiserver: not started")
	}
	if done, _ := p.exited(); done {
		return errors.New("stop kube-apiserver: already stopped")
	}
	stopAll([]*proc{p}, time.Second)
	logf(c.logw, "kube-apiserver stopped")
	return nil
}

// RestartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same port with the same certificates and etcd, so that clients and
// kubeconfigs made before the outage work again, and waits until it is
// ready.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	i := -1
	for j, p := range c.procs {
		if p.name == "kube-apiserver" {
			i = j
		}
	}
	if i < 0 {
		return errors.New("restart kube-apiserver: not started")
	}
	if done, _ := c.procs[i].exited(); !done {
		return errors.New("restart kube-apiserver: still running")
	}
	p, err := c.execAPIServer()
	if err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	c.procs[i] = p
	start := time.Now()
	if err := c.waitAPIServer(ctx, p); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	logf(c.logw, "kube-apiserver restarted in %s", since(start))
	return nil
}
