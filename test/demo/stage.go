package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	istio "istio.io/client-go/pkg/clientset/versioned"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

// demo is what the story runs on: the control plane, the fake GitLab and
// shipbot, and the clients the demo reads them with.
type demo struct {
	o          options
	dir        string // temp dir: config, bbolt file, shipbot's log
	cluster    *cluster.Cluster
	gitlab     *fakegitlab.Server
	istio      istio.Interface
	api        *api.Client
	version    int      // the minor version of the next tag
	deliveries int      // webhooks sent, for their delivery UUIDs
	shown      string   // the release state follow printed last
	undo       []func() // what tearDown runs, last first
}

// setUp starts the control plane, the fake GitLab and shipbot, and waits
// for shipbot to be ready. What it started is taken down by tearDown, even
// when it fails half way.
func (d *demo) setUp(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "shipbot-demo-")
	if err != nil {
		return err
	}
	d.dir = dir
	d.undo = append(d.undo, func() { os.RemoveAll(dir) })
	say("starting a local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) with the Istio CRDs")
	say("the first run builds them from Go modules: about 10 minutes on 2 cores; later runs start in seconds")
	kc, err := cluster.Start(ctx, cluster.Options{Istio: true, Log: prefixed("cluster")})
	if err != nil {
		return err
	}
	d.cluster = kc
	d.undo = append(d.undo, func() { _ = kc.Stop() })
	if d.istio, err = istio.NewForConfig(kc.RESTConfig()); err != nil {
		return err
	}
	d.gitlab = startGitLab()
	d.undo = append(d.undo, d.gitlab.Close)
	say("fake GitLab API at " + d.gitlab.URL() + " (test/fakegitlab, in this process)")
	d.api = &api.Client{Server: "http://" + d.o.listen, Token: apiToken, Actor: d.o.actor}
	return d.startShipbot(ctx)
}

// tearDown stops what setUp started, last first.
func (d *demo) tearDown() {
	for i := len(d.undo) - 1; i >= 0; i-- {
		d.undo[i]()
	}
}

func (d *demo) configPath() string { return filepath.Join(d.dir, "shipbot.yaml") }
func (d *demo) logPath() string    { return filepath.Join(d.dir, "shipbot.log") }

// startShipbot writes the config, runs `shipbot serve` on it and waits for
// /readyz. Its log goes to a file, or to the terminal with -v.
func (d *demo) startShipbot(ctx context.Context) error {
	cfg := d.config()
	if err := os.WriteFile(d.configPath(), []byte(cfg), 0o600); err != nil {
		return err
	}
	say("config: " + d.configPath())
	var out io.Writer = prefixed("shipbot")
	if !d.o.verbose {
		f, err := os.Create(d.logPath())
		if err != nil {
			return err
		}
		d.undo = append(d.undo, func() { f.Close() })
		out = f
		say("shipbot's log: " + d.logPath() + " (-v prints it here)")
	}
	cmd := exec.CommandContext(ctx, d.o.shipbot, "serve", "--config", d.configPath())
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (run `make build` first): %w", d.o.shipbot, err)
	}
	d.undo = append(d.undo, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	return d.waitReady(ctx)
}

func (d *demo) waitReady(ctx context.Context) error {
	return poll(ctx, 30*time.Second, "shipbot /readyz", func() (bool, error) {
		resp, err := http.Get("http://" + d.o.listen + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// logTail prints the last n lines of shipbot's log, to show why a step
// did not happen.
func (d *demo) logTail(w io.Writer, n int) {
	b, err := os.ReadFile(d.logPath())
	if err != nil || len(b) == 0 {
		return
	}
	lines := strings.Split(string(bytes.TrimSpace(b)), "\n")
	fmt.Fprintf(w, "--- the last lines of shipbot's log (%s)\n%s\n---\n", d.logPath(), strings.Join(lines[max(0, len(lines)-n):], "\n"))
}
