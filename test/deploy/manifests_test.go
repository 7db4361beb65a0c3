package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/bot/intake"
	"github.com/shipbot/shipbot/deployer/config"
)

// envRef finds the ${NAME} secrets a config reads from the environment.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// shipbotYAML returns the config text in configmap.yaml and the variables it names.
func shipbotYAML(t *testing.T) (text string, vars []string) {
	t.Helper()
	cm, _ := find[corev1.ConfigMap](t, readManifests(t, "configmap.yaml"), "ConfigMap", "shipbot-config")
	text, ok := cm.Data["shipbot.yaml"]
	if !ok {
		t.Fatal("configmap.yaml: ConfigMap shipbot-config has no key shipbot.yaml")
	}
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(vars, m[1]) {
			vars = append(vars, m[1])
		}
	}
	return text, vars
}

// loadShipbotYAML loads the ConfigMap's config with the real loader, with
// every ${NAME} it references set as the Secret would set it.
func loadShipbotYAML(t *testing.T) *config.Config {
	t.Helper()
	text, vars := shipbotYAML(t)
	for _, v := range vars {
		t.Setenv(v, "test-value-of-"+v)
	}
	cfg, err := config.Parse("deploy/configmap.yaml (shipbot.yaml)", []byte(text))
	if err != nil {
		t.Fatalf("the shipbot.yaml in deploy/configmap.yaml does not load:\n%v", err)
	}
	return cfg
}

func TestConfigMapHoldsAValidConfig(t *testing.T) {
	cfg := loadShipbotYAML(t)
	inCluster := false
	for _, c := range cfg.Clusters {
		inCluster = inCluster || c.InCluster
	}
	if !inCluster {
		t.Errorf("no cluster with inCluster: true: the ServiceAccount and rbac.yaml would go unused")
	}
	if !filepath.IsAbs(cfg.Store.Path) {
		t.Errorf("store.path %q is relative: it must be on the volume, and the root filesystem is read-only", cfg.Store.Path)
	}
	if cfg.GitLab.WebhookSecret.String() == "(redacted)" || cfg.GitLab.Token.String() == "(redacted)" {
		t.Errorf("a GitLab secret is written in the ConfigMap; use ${NAME} and the Secret")
	}
}

// The Deployment, Service, Secret, PVC and Ingress must agree with the config
// and with each other; each mismatch here is a pod that starts and fails.
func TestManifestsAgreeWithEachOther(t *testing.T) {
	cfg := loadShipbotYAML(t)
	_, vars := shipbotYAML(t)
	ms := readManifests(t, append(kustomizeResources(t), optionalFiles...)...)
	dep, _ := find[appsv1.Deployment](t, ms, "Deployment", "shipbot")
	pvc, _ := find[corev1.PersistentVolumeClaim](t, ms, "PersistentVolumeClaim", "shipbot-data")
	secret, _ := find[corev1.Secret](t, ms, "Secret", "shipbot")
	svc, _ := find[corev1.Service](t, ms, "Service", "shipbot")
	ing, _ := find[networkingv1.Ingress](t, ms, "Ingress", "shipbot")
	find[corev1.ServiceAccount](t, ms, "ServiceAccount", dep.Spec.Template.Spec.ServiceAccountName)

	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("deployment has %d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	mounts := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				mounts[m.MountPath] = v
			}
		}
	}

	t.Run("single writer", func(t *testing.T) {
		if r := deref(dep.Spec.Replicas, 1); r != 1 {
			t.Errorf("replicas = %d, want 1: bbolt is single-writer", r)
		}
		if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("strategy = %q, want Recreate: a rolling update runs two pods on one store", dep.Spec.Strategy.Type)
		}
		if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			t.Errorf("claim access modes = %v, want [ReadWriteOnce]", pvc.Spec.AccessModes)
		}
	})
	t.Run("config file", func(t *testing.T) {
		want := []string{"serve", "--config"}
		if len(c.Args) != 3 || !slices.Equal(c.Args[:2], want) {
			t.Fatalf("args = %q, want serve --config <file>", c.Args)
		}
		v, ok := mounts[path.Dir(c.Args[2])]
		if !ok || v.ConfigMap == nil || v.ConfigMap.Name != "shipbot-config" || path.Base(c.Args[2]) != "shipbot.yaml" {
			t.Errorf("--config %s is not the key shipbot.yaml of ConfigMap shipbot-config mounted at %s (volume %+v)", c.Args[2], path.Dir(c.Args[2]), v)
		}
	})
	t.Run("store on the claim", func(t *testing.T) {
		v, ok := mounts[path.Dir(cfg.Store.Path)]
		if !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Name {
			t.Errorf("store.path %s: its directory is not where claim %s is mounted (mounts: %v)", cfg.Store.Path, pvc.Name, c.VolumeMounts)
		}
	})
	t.Run("secrets from the Secret", func(t *testing.T) {
		for _, name := range vars {
			e := envVar(c.Env, name)
			switch {
			case e == nil:
				t.Errorf("shipbot.yaml reads ${%s}, the container does not set it", name)
			case e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret.Name:
				t.Errorf("env %s does not come from Secret %s", name, secret.Name)
			case secret.StringData[e.ValueFrom.SecretKeyRef.Key] == "":
				t.Errorf("env %s reads key %q, which secret.example.yaml does not document", name, e.ValueFrom.SecretKeyRef.Key)
			}
		}
	})
	t.Run("port and probes", func(t *testing.T) {
		_, port, _ := strings.Cut(cfg.Listen, ":")
		p := containerPort(c, "http")
		if p == nil || strconv.Itoa(int(p.ContainerPort)) != port {
			t.Fatalf("listen %s, but container port http is %v", cfg.Listen, p)
		}
		for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
				t.Errorf("want a probe GET %s on port http, got %+v", want, probe)
			}
		}
		if svc.Spec.Ports[0].TargetPort.String() != "http" || !subset(svc.Spec.Selector, dep.Spec.Template.Labels) {
			t.Errorf("service does not reach the pod's http port: %+v", svc.Spec)
		}
	})
	t.Run("hardened", func(t *testing.T) {
		ps, cs := spec.SecurityContext, c.SecurityContext
		checks := map[string]bool{
			"pod runAsNonRoot":           ps != nil && deref(ps.RunAsNonRoot, false),
			"pod seccomp RuntimeDefault": ps != nil && ps.SeccompProfile != nil && ps.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
			"readOnlyRootFilesystem":     cs != nil && deref(cs.ReadOnlyRootFilesystem, false),
			"no privilege escalation":    cs != nil && cs.AllowPrivilegeEscalation != nil && !*cs.AllowPrivilegeEscalation,
			"capabilities drop ALL":      cs != nil && cs.Capabilities != nil && slices.Contains(cs.Capabilities.Drop, "ALL"),
			"memory limit":               !c.Resources.Limits.Memory().IsZero(),
		}
		for name, ok := range checks {
			if !ok {
				t.Errorf("container is not hardened: %s", name)
			}
		}
		if uid := dockerfileUser(t); ps == nil || ps.RunAsUser == nil || strconv.Itoa(int(*ps.RunAsUser)) != uid {
			t.Errorf("pod runAsUser %v, want the Dockerfile's USER %s", ps.RunAsUser, uid)
		}
	})
	t.Run("ingress exposes only the webhook", func(t *testing.T) {
		var paths []string
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				paths = append(paths, p.Path)
				if b := p.Backend.Service; b == nil || b.Name != svc.Name || b.Port.Name != "http" {
					t.Errorf("ingress path %s does not go to service %s port http", p.Path, svc.Name)
				}
			}
		}
		if !slices.Equal(paths, []string{intake.Path}) {
			t.Errorf("ingress paths = %v, want only %s", paths, intake.Path)
		}
	})
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func envVar(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}

func containerPort(c corev1.Container, name string) *corev1.ContainerPort {
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			return &c.Ports[i]
		}
	}
	return nil
}

func subset(small, big map[string]string) bool {
	for k, v := range small {
		if big[k] != v {
			return false
		}
	}
	return len(small) > 0
}

// dockerfileUser returns the numeric user of deploy/Dockerfile's last USER line.
func dockerfileUser(t *testing.T) string {
	t.Helper()
	var user string
	for _, line := range dockerfileLines(t) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "USER" {
			user, _, _ = strings.Cut(f[1], ":")
		}
	}
	if _, err := strconv.Atoi(user); err != nil {
		t.Fatalf("deploy/Dockerfile: USER %q is not numeric; runAsNonRoot cannot verify a name", user)
	}
	return user
}

// dockerfileLines returns the Dockerfile's instructions, continuation lines joined.
func dockerfileLines(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// The Dockerfile's paths are relative to the repository root, its build
// context; docker cannot run here, so check what it copies and builds.
func TestDockerfilePaths(t *testing.T) {
	lines := dockerfileLines(t)
	var build, entry, binary string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "COPY ") && !strings.Contains(l, "--from"):
			for _, src := range strings.Fields(l)[1 : len(strings.Fields(l))-1] {
				if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
					t.Errorf("%s: %v (the build context is the repository root)", l, err)
				}
			}
		case strings.HasPrefix(l, "COPY --from=build "):
			binary = strings.Fields(l)[3]
		case strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build"):
			build = l
		case strings.HasPrefix(l, "ENTRYPOINT "):
			entry = l
		}
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.HasSuffix(build, " ./cmd/shipbot") {
		t.Errorf("build step %q: want a CGO_ENABLED=0 build of ./cmd/shipbot", build)
	}
	if _, err := os.Stat("../../cmd/shipbot/main.go"); err != nil {
		t.Error(err)
	}
	if binary == "" || entry != `ENTRYPOINT ["`+binary+`"]` {
		t.Errorf("ENTRYPOINT %q does not run the binary copied to %q", entry, binary)
	}
}

// kubectl kustomize must see the same objects this package applies.
func TestKustomizeBuildsTheSameObjects(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	out, err := exec.CommandContext(t.Context(), kubectl, "kustomize", deployDir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/: %v", err)
	}
	ids := func(ms []manifest) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.obj.GetKind()+" "+m.obj.GetNamespace()+"/"+m.obj.GetName())
		}
		slices.Sort(out)
		return out
	}
	got, want := ids(decodeManifests(t, "kubectl kustomize deploy/", out)), ids(readManifests(t, kustomizeResources(t)...))
	if !slices.Equal(got, want) {
		t.Errorf("kubectl kustomize builds\n  %v\nthe test applies\n  %v", got, want)
	}
}

// The apiserver creates every object, and the pod is admitted under Pod
// Security "restricted", scheduled with its claim bound, and Ready.
func TestManifestsInstall(t *testing.T) {
	install(t)
	t.Logf("applied deploy/ in %s", installed.took.Round(time.Millisecond))
	d := waitAvailable(t, namespace, "shipbot", 90*time.Second)
	t.Logf("deployment shipbot available (seen %s after the install began)", time.Since(installed.start).Round(time.Millisecond))

	pods, err := kc.Client().CoreV1().Pods(namespace).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=shipbot"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("want 1 shipbot pod, got %v (%v)", len(pods.Items), err)
	}
	if p := pods.Items[0]; p.Spec.ServiceAccountName != serviceAccount || p.Spec.NodeName == "" {
		t.Errorf("pod %s: service account %q, node %q", p.Name, p.Spec.ServiceAccountName, p.Spec.NodeName)
	}
	pvc, err := kc.Client().CoreV1().PersistentVolumeClaims(namespace).Get(t.Context(), "shipbot-data", metav1.GetOptions{})
	if err != nil || pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim shipbot-data: %v (%v)", pvc.Status.Phase, err)
	}
	if d.Spec.Template.Spec.Containers[0].Image == "" {
		t.Error("no image")
	}

	// The "restricted" label is enforced here: the same namespace refuses a
	// root pod, so admitting shipbot's pod means it meets the profile.
	root := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: namespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	_, err = kc.Client().CoreV1().Pods(namespace).Create(t.Context(), root, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("a pod violating Pod Security restricted was not refused in namespace %s: %v", namespace, err)
	}

	for _, name := range []string{"shipbot-namespaces", "shipbot-workloads"} {
		b, err := kc.Client().RbacV1().ClusterRoleBindings().Get(t.Context(), name, metav1.GetOptions{})
		want := rbacv1.Subject{Kind: "ServiceAccount", Name: serviceAccount, Namespace: namespace}
		if err != nil || !slices.Contains(b.Subjects, want) || b.RoleRef.Name != name {
			t.Errorf("cluster role binding %s: %v, want %s bound to role %s", name, err, saUser, name)
		}
	}
}
