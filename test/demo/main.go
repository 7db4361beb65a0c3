// Command demo is `make demo`: shipbot's whole story in one terminal.
//
// It starts the local Kubernetes control plane (with the Istio CRDs), a fake
// GitLab API in process and `shipbot serve` with a bbolt file in a temp dir,
// then replays GitLab webhooks: a dev pipeline deploys; a merge request gets
// a preview namespace and the comment shipbot posts on it; tag v1.0.0 goes
// live and tag v1.1.0 starts an Istio canary at 10 %. Keys move the canary
// on (continue, promote, roll back) through shipbot's HTTP API while the
// VirtualService's weights are shown as they change.
//
// With -once the same story runs unattended, for CI: it continues through
// every stage, tags again, promotes and rolls back, and exits non-zero if
// any step does not happen within -timeout. Ctrl-C stops everything the
// demo started.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the demo's flags.
type options struct {
	shipbot string        // the binary to run
	listen  string        // shipbot's address
	once    bool          // run the keys of script instead of reading them
	timeout time.Duration // how long each step may take
	actor   string        // X-Shipbot-Actor of the keys
	verbose bool          // stream shipbot's log instead of writing it to a file
	tty     bool          // keys come from a terminal, which echoes them
}

func main() {
	var o options
	flag.StringVar(&o.shipbot, "shipbot", "bin/shipbot", "the shipbot binary to run")
	flag.BoolVar(&o.once, "once", false, "run the story unattended (continue, promote, roll back) and exit; for CI")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8080", "the address shipbot listens on")
	flag.DurationVar(&o.timeout, "timeout", 90*time.Second, "how long each step may take before the demo fails")
	flag.StringVar(&o.actor, "as", "alice", "who presses the keys, sent to shipbot's API as X-Shipbot-Actor")
	flag.BoolVar(&o.verbose, "v", false, "print shipbot's log as it runs instead of keeping it in a file")
	flag.Parse()
	if fi, err := os.Stdin.Stat(); err == nil {
		o.tty = fi.Mode()&os.ModeCharDevice != 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run sets the stage up, tells the story with keys from keys (or the
// script, with -once), and takes everything down again.
func run(ctx context.Context, o options, keys io.Reader) error {
	start := time.Now()
	d := &demo{o: o}
	defer d.tearDown()
	err := d.setUp(ctx)
	if err == nil {
		err = d.tell(ctx, keys)
	}
	if err != nil && ctx.Err() != nil && !o.once {
		say("interrupted: stopping")
		return nil
	}
	if err != nil {
		d.logTail(os.Stderr, 30)
		return err
	}
	say(fmt.Sprintf("done in %s", time.Since(start).Round(100*time.Millisecond)))
	return nil
}
