// Package cluster runs a real Kubernetes control plane on loopback for tests:
// etcd, kube-apiserver (RBAC on), kube-controller-manager, kube-scheduler and
// kwok, which plays the kubelet for one fake node named NodeName
// (label type=kwok; 32 CPUs, 256Gi memory, 1000 pods). Optionally the Istio
// CRDs of the istio.io/api version in shipbot's go.mod are installed (with
// IstioVersions, networking.istio.io serving only some versions, as an older
// Istio does), and the Gateway API CRDs (standard channel) of the
// sigs.k8s.io/gateway-api version in it.
//
// A test binary uses it from TestMain:
//
//	var testCluster *cluster.Cluster
//
//	func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Istio: true}, &testCluster) }
//
//	func TestX(t *testing.T) {
//		cluster.Require(t, testCluster)
//		ns := testCluster.NewNamespace(t)
//		...
//	}
//
// # Outages
//
// StopAPIServer stops kube-apiserver and leaves the rest running;
// RestartAPIServer starts it again on the same port, certificates and etcd
// (and restarts the controllers, the scheduler and kwok, whose watches
// would otherwise come back only after a backoff). The outage is the whole
// test binary's: tests that cause one run alone.
//
// # Binaries
//
// The executables are built by package bins, with one go build -trimpath in the module
// test/cluster/controlplane, whose go.mod pins etcd, Kubernetes and kwok, into
// $SHIPBOT_TEST_BIN, else $XDG_CACHE_HOME/shipbot-test/bin (or
// ~/.cache/shipbot-test/bin), in a directory named by a hash of that go.mod and
// go.sum, so that a version bump rebuilds. A file lock makes parallel test
// binaries build once. A cold build takes several minutes, longer than go
// test's default timeout allows, so prebuild with
//
//	make cluster-bins   # go run ./test/cluster/cmd/clusterbins
//
// # What kwok makes of pods
//
// Pods on the fake node become Running and Ready at once, whatever their image
// (nothing is pulled), and Job pods then Succeed. Two image conventions make a
// pod fail instead, the way kubelet reports it, so that pod-level failure
// reasons can be tested:
//
//   - An image under the registry host registry.invalid/ (BadImageRegistry),
//     e.g. "registry.invalid/app:missing": the pod stays Pending and not Ready;
//     that container's status is waiting with reason ImagePullBackOff and a
//     message starting `Back-off pulling image "registry.invalid/app:missing"`.
//     The pod gets the events Warning Failed ("Failed to pull image: ...",
//     "Error: ImagePullBackOff") and Normal BackOff.
//   - An image whose tag is :crashloop (CrashLoopTag), e.g. "app:crashloop":
//     the pod is Running and not Ready; that container is waiting with reason
//     CrashLoopBackOff, restartCount 1, last state terminated with exit code 1
//     (reason Error), and the pod gets a Warning BackOff event
//     "Back-off restarting failed container".
//
// Other containers in the same pod run and are Ready. Only .spec.containers are
// looked at, not init containers. Unschedulable pods come from the real
// scheduler: a request larger than the node, e.g. cpu: 1000, gives a
// FailedScheduling event "... Insufficient cpu".
//
// # Environment
//
//   - SHIPBOT_TEST_BIN: binary cache directory.
//   - SHIPBOT_REPO_ROOT: repository root, if it cannot be found from this
//     package's source path or the working directory.
//   - SHIPBOT_TEST_KEEP=1: Stop keeps the cluster's directory (logs, etcd data).
//   - SHIPBOT_SKIP_CLUSTER=1: Main starts nothing and Require skips; for quick
//     local runs only.
package cluster

// BadImageRegistry is the registry host prefix of images that kwok reports as
// ImagePullBackOff.
const BadImageRegistry = "registry.invalid/"

// CrashLoopTag is the image tag suffix that kwok reports as CrashLoopBackOff.
const CrashLoopTag = ":crashloop"
