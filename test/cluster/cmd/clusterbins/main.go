// Command clusterbins builds and caches the local control plane's
// executables (see package github.com/shipbot/shipbot/test/cluster/bins),
// for make cluster-bins and CI. It imports only the standard library and
// bins, so that on a cold Go build cache it compiles nothing but the
// control plane itself.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shipbot/shipbot/test/cluster/bins"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := bins.Ensure(ctx, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterbins:", err)
		os.Exit(1)
	}
	fmt.Printf("binaries ready:\n  %s\n  %s\n  %s\n  %s\n  %s\n", b.Etcd, b.APIServer, b.ControllerManager, b.Scheduler, b.Kwok)
}
