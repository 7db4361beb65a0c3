// Command demo is `make demo`: it starts the local Kubernetes control plane,
// runs `shipbot serve` against it with a bbolt file in a temp dir, replays a
// GitLab pipeline-success webhook for the dev branch and shows what was
// deployed. Ctrl-C stops everything it started.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

const (
	secret    = "demo-webhook-secret"
	namespace = "demo-dev"
	listen    = "127.0.0.1:8080"
)

func main() {
	shipbot := flag.String("shipbot", "bin/shipbot", "the shipbot binary to run")
	once := flag.Bool("once", false, "exit after the deploy instead of waiting for Ctrl-C (for CI)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *shipbot, *once); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, shipbot string, once bool) error {
	dir, err := os.MkdirTemp("", "shipbot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	say("starting a local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
	say("the first run builds them from Go modules: about 10 minutes on 2 cores; later runs start in seconds")
	kc, err := cluster.Start(ctx, cluster.Options{Log: prefixed("cluster")})
	if err != nil {
		return err
	}
	defer kc.Stop()

	cfgPath := filepath.Join(dir, "shipbot.yaml")
	if err := os.WriteFile(cfgPath, []byte(demoConfig(kc.KubeconfigPath(), filepath.Join(dir, "shipbot.db"))), 0o600); err != nil {
		return err
	}
	say("config: " + cfgPath)
	srv, err := startShipbot(ctx, shipbot, cfgPath)
	if err != nil {
		return err
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	if err := waitReady(ctx); err != nil {
		return err
	}
	if err := replay(ctx); err != nil {
		return err
	}
	dep, err := waitDeployed(ctx, kc)
	if err != nil {
		return err
	}
	report(dep, kc.KubeconfigPath(), cfgPath)
	if once {
		return nil
	}
	say("running; press Ctrl-C to stop shipbot and the control plane")
	<-ctx.Done()
	say("stopping")
	return nil
}

func demoConfig(kubeconfig, db string) string {
	return fmt.Sprintf(`# Written by make demo.
listen: %s
log: {level: info, format: text}
gitlab:
  baseURL: https://gitlab.example.com
  webhookSecret: %s
store:
  path: %s
clusters:
  - name: local
    kubeconfig: %s
environments:
  - name: dev
    clusters: [local]
    namespace: %s
    refs:
      branches: ['^dev$']
apps:
  - name: web
    project: shop/web
    registry: registry.example.com
    params:
      replicas: 3
      ports: [{name: http, port: 8080}]
      resources: {cpuRequest: 50m, memoryRequest: 64Mi}
    environments:
      dev:
        host: web.dev.example.com
`, listen, secret, db, kubeconfig, namespace)
}

func startShipbot(ctx context.Context, bin, cfg string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = prefixed("shipbot"), prefixed("shipbot")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (run `make build` first): %w", bin, err)
	}
	return cmd, nil
}

func waitReady(ctx context.Context) error {
	return poll(ctx, 30*time.Second, "shipbot /readyz", func() (bool, error) {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// replay sends what GitLab sends when a pipeline on dev succeeds.
func replay(ctx context.Context) error {
	body, err := fixtures.PipelineSuccessBody(fixtures.Build{ProjectID: 42, Project: "shop/web", Ref: "dev",
		SHA: "4f2d9c1e8b7a6d5c4b3a29181716151413121110", PipelineID: 1234, Username: "alice"})
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+listen+"/webhooks/gitlab", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Pipeline Hook")
	req.Header.Set("X-Gitlab-Token", secret)
	req.Header.Set("X-Gitlab-Event-UUID", "demo-pipeline-1234")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	say(fmt.Sprintf("replayed a Pipeline Hook (success, ref dev, pipeline 1234): HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(reply))))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// waitDeployed waits for shipbot to record the deploy's end, read from its
// own metrics, then reads back what it applied.
func waitDeployed(ctx context.Context, kc *cluster.Cluster) (*appsv1.Deployment, error) {
	err := poll(ctx, 90*time.Second, "shipbot to finish the deploy", func() (bool, error) {
		resp, err := http.Get("http://" + listen + "/metrics")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if bytes.Contains(b, []byte(`shipbot_deploys_total{environment="dev",result="failed"} `)) {
			return false, errors.New("the deploy failed; see the shipbot log above")
		}
		return bytes.Contains(b, []byte(`shipbot_deploys_total{environment="dev",result="succeeded"} 1`)), nil
	})
	if err != nil {
		return nil, err
	}
	return kc.Client().AppsV1().Deployments(namespace).Get(ctx, "web", metav1.GetOptions{})
}

func report(d *appsv1.Deployment, kubeconfig, cfg string) {
	a := d.Annotations
	fmt.Printf(`
deployed:
  Deployment   %s/%s, %d/%d replicas available
  image        %s
  commit       %s (ref %s)
  pipeline     %s, job %s, by %s
  record       %s in the bbolt store

where to look:
  kubectl --kubeconfig %s -n %s get deploy,svc,ingress,pods
  curl -s http://%s/metrics | grep shipbot_
  curl -s http://%s/readyz
  config: %s
`, d.Namespace, d.Name, d.Status.AvailableReplicas, *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image,
		a["shipbot.io/sha"], a["shipbot.io/ref"], a["shipbot.io/pipeline-id"], a["shipbot.io/job-id"], a["shipbot.io/deployed-by"],
		a["shipbot.io/deployment"], kubeconfig, d.Namespace, listen, listen, cfg)
}

func poll(ctx context.Context, within time.Duration, what string, f func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", within, what)
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func say(s string) { fmt.Println("==> " + s) }

// prefixed writes each line of a subprocess's output with a tag.
func prefixed(tag string) io.Writer {
	r, w := io.Pipe()
	go func() {
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := r.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				fmt.Printf("[%s] %s\n", tag, buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	return w
}
