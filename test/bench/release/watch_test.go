package release

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/shipbot/shipbot/test/cluster"
)

// events timestamps what a watch delivers and hands the time of the first
// event that matches an expectation to whoever registered it. Register
// before causing the change, so that no event can slip past.
type events struct {
	what    string
	mu      sync.Mutex
	waiting []*expectation
	ended   bool
}

type expectation struct {
	match func(runtime.Object) bool
	at    chan time.Time // buffered; closed unmatched if the watch ends
}

// follow reads w until it ends or ctx is done. The clock is read when an
// event arrives, before anything else is done with it.
func follow(ctx context.Context, what string, w watch.Interface) *events {
	e := &events{what: what}
	go func() {
		defer w.Stop()
		defer e.end()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok || ev.Type == watch.Error {
					return
				}
				at := time.Now()
				if ev.Type != watch.Deleted {
					e.deliver(ev.Object, at)
				}
			}
		}
	}()
	return e
}

func (e *events) deliver(obj runtime.Object, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	keep := e.waiting[:0]
	for _, x := range e.waiting {
		if x.match(obj) {
			x.at <- at
			continue
		}
		keep = append(keep, x)
	}
	e.waiting = keep
}

func (e *events) end() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ended = true
	for _, x := range e.waiting {
		close(x.at)
	}
	e.waiting = nil
}

// expect registers match; the channel yields the time of the first event
// that satisfies it.
func (e *events) expect(match func(runtime.Object) bool) <-chan time.Time {
	x := &expectation{match: match, at: make(chan time.Time, 1)}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		close(x.at)
	} else {
		e.waiting = append(e.waiting, x)
	}
	return x.at
}

// await waits for an expectation, failing the benchmark if the watch ended
// or nothing matched within the limit.
func (e *events) await(b *testing.B, ch <-chan time.Time, within time.Duration, what string) time.Time {
	b.Helper()
	select {
	case at, ok := <-ch:
		if !ok {
			b.Fatalf("%s: the %s watch ended before it was seen", what, e.what)
		}
		return at
	case <-time.After(within):
		b.Fatalf("%s: not seen on the %s watch within %s", what, e.what, within)
	}
	return time.Time{}
}

// allOn matches the VirtualService name once subset takes all of its
// traffic, whether the others still have routes of weight 0 or none.
func allOn(name, subset string) func(runtime.Object) bool {
	return func(obj runtime.Object) bool {
		w, ok := weights(obj, name)
		if !ok || w[subset] != 100 {
			return false
		}
		for s, n := range w {
			if s != subset && n != 0 {
				return false
			}
		}
		return true
	}
}

// weightsAre matches the VirtualService name whose route weights by
// subset are want.
func weightsAre(name string, want map[string]int32) func(runtime.Object) bool {
	return func(obj runtime.Object) bool {
		got, ok := weights(obj, name)
		return ok && maps.Equal(got, want)
	}
}

// weights sums the route weights by subset of the VirtualService name.
func weights(obj runtime.Object, name string) (map[string]int32, bool) {
	vs, ok := obj.(*networkingv1.VirtualService)
	if !ok || vs.Name != name {
		return nil, false
	}
	return cluster.Weights(vs), true
}

// rolledOut matches the Deployment name once it is rolled out as the
// engine judges it (and `kubectl rollout status` does): the controller has
// seen the latest spec and every wanted pod is updated and available.
func rolledOut(name string) func(runtime.Object) bool {
	return func(obj runtime.Object) bool {
		d, ok := obj.(*appsv1.Deployment)
		if !ok || d.Name != name || d.Spec.Replicas == nil || d.Generation > d.Status.ObservedGeneration {
			return false
		}
		st, want := d.Status, *d.Spec.Replicas
		return st.UpdatedReplicas >= want && st.Replicas == st.UpdatedReplicas && st.AvailableReplicas >= want
	}
}

// availableAtSize matches the Deployment name once it has pods wanted and
// every wanted pod is available, whatever its size: the first such event
// after a release starts is its new version ready for the first weight
// (one pod of four with matchTraffic, four with full). A Deployment at 0
// does not match.
func availableAtSize(name string) func(runtime.Object) bool {
	return func(obj runtime.Object) bool {
		d, ok := obj.(*appsv1.Deployment)
		if !ok || d.Name != name || d.Spec.Replicas == nil || *d.Spec.Replicas == 0 {
			return false
		}
		return rolledOut(name)(obj)
	}
}

// wantsPods matches the Deployment name once its spec asks for pods: when
// shipbot has created it, or scaled it up from 0, for the first weight.
func wantsPods(name string) func(runtime.Object) bool {
	return func(obj runtime.Object) bool {
		d, ok := obj.(*appsv1.Deployment)
		return ok && d.Name == name && d.Spec.Replicas != nil && *d.Spec.Replicas > 0
	}
}
