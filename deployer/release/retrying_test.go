package release

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// downClusters fails every connection, as clusters whose apiserver is down do.
type downClusters struct {
	mu    sync.Mutex
	err   error
	tries int
}

func (d *downClusters) Cluster(context.Context, string) (*Cluster, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tries++
	return nil, d.err
}

func (d *downClusters) set(err error) (tries int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
	return d.tries
}

// A step that fails on a cluster that does not answer is tried again;
// the release keeps its phase, and its history says why it waits: once
// per cause, however often it is tried.
func TestFailedStepIsInHistory(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	down := &downClusters{err: errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")}
	e, err := NewStepper(Options{Store: st, Clusters: down, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	id := pendingRelease(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&Scheduler{Stepper: e, Log: testLogger(), Retry: 10 * time.Millisecond}).Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	triedAfter := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); down.set(down.err) < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the release was not tried %d times within 10s", n)
			}
		}
	}
	triedAfter(5)
	tries := down.set(errors.New("the server is currently unable to handle the request"))
	triedAfter(tries + 5)

	r := mustGet(t, e, id)
	var retries []string
	for _, h := range r.History {
		if h.Kind == EntryRetry {
			retries = append(retries, h.Message)
		}
	}
	want := []string{
		"step failed; trying again in 10ms: dial tcp 127.0.0.1:6443: connect: connection refused",
		"step failed; trying again in 10ms: the server is currently unable to handle the request",
	}
	if strings.Join(retries, "\n") != strings.Join(want, "\n") {
		t.Errorf("retry entries\n%s\nwant\n%s", strings.Join(retries, "\n"), strings.Join(want, "\n"))
	}
	if r.Phase != Pending {
		t.Errorf("phase %s, want Pending still: a cluster that does not answer fails no release", r.Phase)
	}
}
