package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// StopAPIServer stops kube-apiserver, as an outage of the control plane
// would: etcd, the controllers, the scheduler and kwok keep running, and
// clients get connection refused until RestartAPIServer. Every test of
// the binary sees the outage: run none in parallel with it.
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
// ready. The controllers, the scheduler and kwok are restarted too: after
// a 20 s outage their watches come back only after a backoff of up to a
// minute, which tests would wait for; restarted, they work at once.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	start := time.Now()
	p := c.proc("kube-apiserver")
	if p == nil {
		return errors.New("restart kube-apiserver: not started")
	}
	if done, _ := p.exited(); !done {
		return errors.New("restart kube-apiserver: still running")
	}
	p, err := c.execAPIServer()
	if err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	c.replace(p)
	if err := c.waitAPIServer(ctx, p); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	if err := c.restartControllers(); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	logf(c.logw, "kube-apiserver restarted in %s", since(start))
	return nil
}

// restartControllers stops the controllers, the scheduler and kwok and
// starts them again.
func (c *Cluster) restartControllers() error {
	children, err := c.controllers()
	if err != nil {
		return err
	}
	var old []*proc
	for _, ch := range children {
		if p := c.proc(ch.name); p != nil {
			old = append(old, p)
		}
	}
	stopAll(old, time.Second)
	for _, ch := range children {
		p, err := startProc(ch.name, ch.bin, c.dir, ch.env, ch.args...)
		if err != nil {
			return err
		}
		c.replace(p)
	}
	return nil
}

// replace puts p in place of the process of the same name.
func (c *Cluster) replace(p *proc) {
	i := slices.IndexFunc(c.procs, func(q *proc) bool { return q.name == p.name })
	c.procs[i] = p
}
