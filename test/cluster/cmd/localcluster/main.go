// Command localcluster runs shipbot's local Kubernetes control plane (see package
// github.com/shipbot/shipbot/test/cluster) until SIGINT or SIGTERM. Command
// clusterbins only builds its executables.
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
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kubeconfig, cluster.Options{Istio: *istio, GatewayAPI: *gatewayAPI, Log: os.Stderr}); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig string, opts cluster.Options) error {
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
