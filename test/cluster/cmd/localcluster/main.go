// Command localcluster runs shipbot's local Kubernetes control plane (see package
// github.com/shipbot/shipbot/test/cluster) until SIGINT or SIGTERM, for make demo.
// With -build-only it just builds and caches the binaries, for CI and make.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shipbot/shipbot/test/cluster"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "also copy the admin kubeconfig to this `path`")
	istio := flag.Bool("istio", false, "install the Istio CRDs")
	gatewayAPI := flag.Bool("gateway-api", false, "install the Gateway API CRDs (standard channel)")
	buildOnly := flag.Bool("build-only", false, "build and cache the binaries, then exit")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kubeconfig, cluster.Options{Istio: *istio, GatewayAPI: *gatewayAPI, Log: os.Stderr}, *buildOnly); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig string, opts cluster.Options, buildOnly bool) error {
	if buildOnly {
		bins, err := cluster.EnsureBinaries(ctx, os.Stderr)
		if err != nil {
			return err
		}
		fmt.Printf("binaries ready:\n  %s\n  %s\n  %s\n  %s\n  %s\n",
			bins.Etcd, bins.APIServer, bins.ControllerManager, bins.Scheduler, bins.Kwok)
		return nil
	}
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Stop()
	path := c.KubeconfigPath()
	if kubeconfig != "" {
		if err := copyFile(path, kubeconfig); err != nil {
			return err
		}
		path = kubeconfig
	}
	fmt.Printf("kubeconfig: %s\nexport KUBECONFIG=%s\nready\n", path, path)
	<-ctx.Done()
	fmt.Println("stopping")
	return c.Stop()
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("copy kubeconfig: %w", err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		return fmt.Errorf("copy kubeconfig: %w", err)
	}
	return nil
}
