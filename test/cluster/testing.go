package cluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startTimeout bounds Start in Main. It is generous because a cold build of the
// Kubernetes binaries takes minutes; make cluster-bins prebuilds them.
const startTimeout = 30 * time.Minute

// Main is for TestMain: it starts one control plane for the test binary, sets *dst,
// runs the tests and stops the control plane. With SHIPBOT_SKIP_CLUSTER=1 it starts
// nothing and leaves *dst nil, so that tests calling Require skip.
func Main(m *testing.M, opts Options, dst **Cluster) {
	os.Exit(runMain(m, opts, dst))
}

func runMain(m *testing.M, opts Options, dst **Cluster) int {
	*dst = nil
	if os.Getenv("SHIPBOT_SKIP_CLUSTER") == "1" {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster.Main: %v\n", err)
		return 1
	}
	*dst = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster.Main: %v\n", err)
	}
	return code
}

// Require skips t when no cluster was started (SHIPBOT_SKIP_CLUSTER=1).
func Require(t testing.TB, c *Cluster) {
	t.Helper()
	if c == nil {
		t.Skip("no local control plane: SHIPBOT_SKIP_CLUSTER=1 is set")
	}
}

// NewNamespace creates a uniquely named namespace for one test and deletes it in t.Cleanup.
func (c *Cluster) NewNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   namespaceName(t.Name()),
		Labels: map[string]string{testNamespaceLabel: "true"},
	}}
	if _, err := c.client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		// t's own context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) { // the test may have deleted it
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// testNamespaceLabel marks the namespaces NewNamespace creates.
const testNamespaceLabel = "shipbot.test/cluster-test"

var notDNSLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// namespaceName derives a valid, unique namespace name from a test name.
func namespaceName(testName string) string {
	base := notDNSLabel.ReplaceAllString(strings.ToLower(testName), "-")
	base = strings.Trim(base, "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	return fmt.Sprintf("t-%s-%s", base, strings.ToLower(rand.Text()[:6]))
}

// WaitNamespacesGone waits until no namespace of NewNamespace's is being
// deleted: a test or benchmark that times the control plane starts once
// the teardown of the one before it (hundreds of objects for the garbage
// collector) is over, rather than racing it. It says how many it waited
// for.
func (c *Cluster) WaitNamespacesGone(ctx context.Context) (int, error) {
	waited := map[string]bool{}
	for {
		list, err := c.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: testNamespaceLabel + "=true"})
		if err != nil {
			return len(waited), err
		}
		terminating := 0
		for _, ns := range list.Items {
			if ns.DeletionTimestamp != nil {
				waited[ns.Name] = true
				terminating++
			}
		}
		if terminating == 0 {
			return len(waited), nil
		}
		select {
		case <-ctx.Done():
			return len(waited), fmt.Errorf("%d namespaces still being deleted: %w", terminating, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
