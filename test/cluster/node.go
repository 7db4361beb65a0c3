package cluster

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeName is the name of the cluster's single fake node, simulated by kwok.
const NodeName = "kwok-node-0"

// Node capacity: large enough for any ordinary test, so that only a deliberately
// huge request (see the package doc) fails to schedule. One node stands for
// a cluster, so it takes more pods than a kubelet's default 110: the release
// benchmarks keep two or three versions of ten apps running (old ones for
// their scale-down delay), and at 110 pods a new version's pods waited
// unschedulable for 10–16 s.
const (
	nodeCPU    = "32"
	nodeMemory = "256Gi"
	nodePods   = "1000"
)

// stages are the kwok Stage objects that drive node and pod status; see doc.go.
//
//go:embed stages/*.yaml
var stages embed.FS

// disabledControllers need a cloud, a pod network or real volumes, none of which exist here.
var disabledControllers = []string{
	"cloud-node-lifecycle-controller", "node-route-controller", "service-lb-controller",
	"node-ipam-controller",
	"persistentvolume-binder-controller", "persistentvolume-attach-detach-controller",
	"persistentvolume-expander-controller",
}

// child is a control-plane process to start: its name, binary,
// environment and arguments.
type child struct {
	name, bin string
	env, args []string
}

// startControllers starts kube-controller-manager, kube-scheduler and kwok. They
// need no readiness wait of their own: registerNode waits for their joint work.
func (c *Cluster) startControllers(context.Context) error {
	children, err := c.controllers()
	if err != nil {
		return err
	}
	for _, ch := range children {
		p, err := startProc(ch.name, ch.bin, c.dir, ch.env, ch.args...)
		if err != nil {
			return err
		}
		c.procs = append(c.procs, p)
	}
	return nil
}

// controllers are kube-controller-manager, kube-scheduler and kwok.
func (c *Cluster) controllers() ([]child, error) {
	kwok, err := c.kwok()
	if err != nil {
		return nil, err
	}
	return []child{
		{"kube-controller-manager", c.bins.ControllerManager, nil, c.controllerManagerArgs()},
		{"kube-scheduler", c.bins.Scheduler, nil, []string{
			"--kubeconfig=" + c.kubeconfig, "--leader-elect=false", "--secure-port=0"}},
		kwok,
	}, nil
}

// kwok is the kwok process, with its configuration written.
func (c *Cluster) kwok() (child, error) {
	kwokConfig, err := writeKwokConfig(c.dir)
	if err != nil {
		return child{}, err
	}
	// HOME keeps kwok from reading a developer's ~/.kwok configuration.
	return child{"kwok", c.bins.Kwok, []string{"HOME=" + c.dir}, []string{
		"--kubeconfig=" + c.kubeconfig, "--config=" + kwokConfig,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=10.244.0.0/16", "--node-ip=10.240.0.1"}}, nil
}

func (c *Cluster) controllerManagerArgs() []string {
	return []string{
		"--kubeconfig=" + c.kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=*,-" + strings.Join(disabledControllers, ",-"),
		"--service-account-private-key-file=" + c.pki.saKey,
		"--root-ca-file=" + c.pki.caCert,
		"--cluster-signing-cert-file=" + c.pki.caCert,
		"--cluster-signing-key-file=" + c.pki.caKey,
	}
}

// writeKwokConfig writes the embedded stages as one multi-document kwok config file.
func writeKwokConfig(dir string) (string, error) {
	names, err := fs.Glob(stages, "stages/*.yaml")
	if err != nil {
		return "", fmt.Errorf("kwok stages: %w", err)
	}
	var buf bytes.Buffer
	for _, n := range names {
		b, err := stages.ReadFile(n)
		if err != nil {
			return "", fmt.Errorf("kwok stages: %w", err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	path := filepath.Join(dir, "kwok.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write kwok config: %w", err)
	}
	return path, nil
}

// registerNode creates the fake node and waits until kwok reports it Ready and
// the node lifecycle controller has lifted its not-ready taint.
func (c *Cluster) registerNode(ctx context.Context) error {
	if _, err := c.client.CoreV1().Nodes().Create(ctx, fakeNode(), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", NodeName, err)
	}
	return c.poll(ctx, "node "+NodeName+" Ready without taints", time.Minute, c.proc("kwok"),
		func(ctx context.Context) (bool, error) {
			n, err := c.client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return nodeReady(n) && len(n.Spec.Taints) == 0, nil
		})
}

func fakeNode() *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(nodeCPU),
		corev1.ResourceMemory: resource.MustParse(nodeMemory),
		corev1.ResourcePods:   resource.MustParse(nodePods),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitDefaultServiceAccount waits for the service-account controller, because the
// ServiceAccount admission plugin rejects pods until their namespace has one.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context) error {
	kcm := c.proc("kube-controller-manager")
	return c.poll(ctx, "service account default/default", time.Minute, kcm, func(ctx context.Context) (bool, error) {
		_, err := c.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}
