package deploy

import (
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// saGroups are the groups the apiserver gives the ServiceAccount's token;
// default bindings to them (discovery, health) count in a real request too.
var saGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}

// access is one request shipbot might make.
type access struct {
	verb, group, resource, sub string
	ns                         string // "" for cluster-scoped resources and cluster-wide requests
	path                       string // a non-resource URL instead of a resource
	why                        string // the code that needs it, or why it must be refused
}

func (a access) String() string {
	if a.path != "" {
		return a.verb + " " + a.path
	}
	r := a.resource
	if a.group != "" {
		r = a.group + "/" + r
	}
	if a.sub != "" {
		r += "/" + a.sub
	}
	if a.ns != "" {
		r += " in namespace " + a.ns
	}
	return a.verb + " " + r
}

// An environment's namespace and a preview namespace: shipbot's rules are
// cluster-wide, so both must work without a binding of their own.
const (
	envNS     = "apps-dev"
	previewNS = "preview-group-web-mr-7"
)

// needed is everything shipbot's code does in a cluster, with the code path.
var needed = []access{
	{verb: "get", resource: "namespaces", why: "kube.Client.EnsureNamespace, DeleteNamespace"},
	{verb: "list", resource: "namespaces", why: "kube.Client.Namespaces: preview orphan sweep"},
	{verb: "create", resource: "namespaces", why: "server-side apply creating an environment or preview namespace"},
	{verb: "patch", resource: "namespaces", why: "server-side apply of environment and preview namespaces"},
	{verb: "delete", resource: "namespaces", why: "kube.Client.DeleteNamespace: preview teardown"},
	{verb: "create", resource: "resourcequotas", ns: previewNS, why: "kube.Client.ApplyNamespace: preview quota"},
	{verb: "patch", resource: "resourcequotas", ns: previewNS, why: "kube.Client.ApplyNamespace: preview quota"},
	{verb: "create", resource: "limitranges", ns: previewNS, why: "kube.Client.ApplyNamespace: preview limits"},
	{verb: "patch", resource: "limitranges", ns: previewNS, why: "kube.Client.ApplyNamespace: preview limits"},
	{verb: "create", group: "apps", resource: "deployments", ns: envNS, why: "kube.Client.Apply of a new app or version"},
	{verb: "patch", group: "apps", resource: "deployments", ns: envNS, why: "kube.Client.Apply"},
	{verb: "get", group: "apps", resource: "deployments", ns: previewNS, why: "kube.Client.WaitRollout, release workloads.state"},
	{verb: "list", group: "apps", resource: "deployments", ns: envNS, why: "release workloads.scaleStrays"},
	{verb: "delete", group: "apps", resource: "deployments", ns: envNS, why: "release prune (revisionHistory) and Retire (retireAfter) of old versions"},
	{verb: "get", group: "apps", resource: "deployments", sub: "scale", ns: envNS, why: "release workloads.scale"},
	{verb: "update", group: "apps", resource: "deployments", sub: "scale", ns: envNS, why: "release workloads.scale"},
	{verb: "create", resource: "services", ns: envNS, why: "kube.Client.Apply"},
	{verb: "patch", resource: "services", ns: envNS, why: "kube.Client.Apply"},
	{verb: "get", resource: "services", ns: envNS, why: "release blueGreen.served"},
	{verb: "create", resource: "configmaps", ns: previewNS, why: "kube.Client.Apply: web-service params.config"},
	{verb: "patch", resource: "configmaps", ns: previewNS, why: "kube.Client.Apply: web-service params.config"},
	{verb: "create", group: "networking.k8s.io", resource: "ingresses", ns: previewNS, why: "kube.Client.Apply: web-service host"},
	{verb: "patch", group: "networking.k8s.io", resource: "ingresses", ns: previewNS, why: "kube.Client.Apply: web-service host"},
	{verb: "list", resource: "pods", ns: envNS, why: "kube.Client.Diagnose"},
	{verb: "list", resource: "events", ns: envNS, why: "kube.Client.Diagnose: Warning events"},
	{verb: "get", group: "networking.istio.io", resource: "virtualservices", ns: envNS, why: "release router.update"},
	{verb: "create", group: "networking.istio.io", resource: "virtualservices", ns: envNS, why: "release router.create"},
	{verb: "update", group: "networking.istio.io", resource: "virtualservices", ns: envNS, why: "release router.update"},
	{verb: "get", group: "networking.istio.io", resource: "destinationrules", ns: envNS, why: "release applyDestinationRule"},
	{verb: "create", group: "networking.istio.io", resource: "destinationrules", ns: envNS, why: "release applyDestinationRule"},
	{verb: "patch", group: "networking.istio.io", resource: "destinationrules", ns: envNS, why: "release applyDestinationRule"},
	{verb: "create", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "kubestore.Inbox.Accept: serve's webhook endpoint with webhook.inbox"},
	{verb: "get", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "kubestore.Inbox.Accept: a redelivery"},
	{verb: "list", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "kubestore.Relay"},
	{verb: "watch", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "kubestore.Relay waits for new ones"},
	{verb: "delete", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "kubestore.Relay removes what its store holds"},
	{verb: "get", path: "/readyz", why: "kube.Client.Ping, behind shipbot's /readyz"},
	{verb: "get", path: "/apis", why: "discovery for kube.Client.Apply's REST mapper"},
}

// refused is what a compromised shipbot must still not be able to do:
// read credentials, run code outside a Deployment, or grant itself more.
var refused = []access{
	{verb: "get", resource: "secrets", ns: namespace, why: "its own Secret is mounted; it reads no Secret through the API"},
	{verb: "list", resource: "secrets", why: "every credential in the cluster"},
	{verb: "patch", resource: "secrets", ns: envNS, why: "templates render no Secret"},
	{verb: "create", resource: "serviceaccounts", sub: "token", ns: "kube-system", why: "minting other identities' tokens"},
	{verb: "create", resource: "pods", ns: envNS, why: "pods come from Deployments only"},
	{verb: "delete", resource: "pods", ns: envNS, why: "shipbot scales, it never deletes pods"},
	{verb: "create", resource: "pods", sub: "exec", ns: envNS, why: "running commands in app containers"},
	{verb: "create", resource: "pods", sub: "portforward", ns: envNS, why: "tunnelling into apps"},
	{verb: "get", resource: "pods", sub: "log", ns: envNS, why: "app logs may hold secrets"},
	{verb: "get", resource: "nodes", why: "nodes are not shipbot's"},
	{verb: "patch", resource: "nodes", why: "nodes are not shipbot's"},
	{verb: "update", resource: "namespaces", why: "namespaces are only server-side applied"},
	{verb: "update", group: "apps", resource: "deployments", ns: envNS, why: "Deployments are only server-side applied; replicas go through scale"},
	{verb: "watch", resource: "pods", ns: envNS, why: "shipbot polls"},
	{verb: "patch", group: "apps", resource: "daemonsets", ns: "kube-system", why: "templates render no DaemonSet"},
	{verb: "create", group: "batch", resource: "jobs", ns: envNS, why: "templates render no Job"},
	{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings", why: "granting itself more"},
	{verb: "patch", group: "rbac.authorization.k8s.io", resource: "clusterroles", why: "granting itself more"},
	{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles", why: "granting itself more"},
	{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "roles", ns: envNS, why: "granting itself more"},
	{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", ns: envNS, why: "granting itself more"},
	{verb: "impersonate", resource: "serviceaccounts", ns: "kube-system", why: "acting as another identity"},
	{verb: "impersonate", resource: "users", why: "acting as another identity"},
	{verb: "create", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", why: "changing the API"},
	{verb: "create", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", why: "intercepting every request"},
	{verb: "create", group: "certificates.k8s.io", resource: "certificatesigningrequests", why: "minting client certificates"},
	{verb: "create", resource: "persistentvolumes", why: "hostPath volumes on nodes"},
	{verb: "patch", group: "networking.istio.io", resource: "envoyfilters", ns: envNS, why: "rewriting the mesh's proxies"},
	{verb: "patch", group: "networking.istio.io", resource: "gateways", ns: "istio-system", why: "shipbot steers routes, not gateways"},
	{verb: "delete", group: "networking.istio.io", resource: "virtualservices", ns: envNS, why: "teardown restores the original, never deletes"},
	{verb: "create", resource: "events", ns: envNS, why: "shipbot records events in its own store"},
	{verb: "get", path: "/metrics", why: "the apiserver's metrics"},
	{verb: "create", group: "shipbot.io", resource: "deliveries", ns: envNS, why: "deliveries live in shipbot's namespace only"},
}

// The ServiceAccount may do exactly what shipbot needs: each request of
// needed is allowed and each of refused denied, as the apiserver's own
// authorizer (Node,RBAC) judges it.
func TestServiceAccountAccess(t *testing.T) {
	install(t)
	for _, tc := range []struct {
		list  []access
		allow bool
	}{{needed, true}, {refused, false}} {
		for _, a := range tc.list {
			t.Run(a.String(), func(t *testing.T) {
				allowed, reason := review(t, a)
				switch {
				case tc.allow && !allowed:
					t.Errorf("%s may not %s, but %s needs it (%s)", saUser, a, a.why, reason)
				case !tc.allow && allowed:
					t.Errorf("%s may %s, which it must not: %s (%s)", saUser, a, a.why, reason)
				}
			})
		}
	}
}

// review asks the apiserver whether the ServiceAccount may make a request.
func review(t *testing.T, a access) (bool, string) {
	t.Helper()
	return reviewAs(t, saUser, a)
}

// reviewAs asks whether user, a ServiceAccount of shipbot's namespace, may make a request.
func reviewAs(t *testing.T, user string, a access) (bool, string) {
	t.Helper()
	spec := authorizationv1.SubjectAccessReviewSpec{User: user, Groups: saGroups}
	if a.path != "" {
		spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: a.path, Verb: a.verb}
	} else {
		spec.ResourceAttributes = &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub, Namespace: a.ns,
		}
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: spec}
	got, err := kc.Client().AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("subject access review for %s: %v", a, err)
	}
	reason := got.Status.Reason
	if got.Status.EvaluationError != "" {
		reason += "; evaluation error: " + got.Status.EvaluationError
	}
	if reason == "" {
		reason = "no RBAC rule matches"
	}
	return got.Status.Allowed, reason
}

// serviceAccountConfig is a client configuration that authenticates with a
// fresh token of the ServiceAccount, as the pod's in-cluster config does.
func serviceAccountConfig(t *testing.T) *rest.Config {
	t.Helper()
	return serviceAccountConfigOf(t, serviceAccount)
}

// serviceAccountConfigOf is serviceAccountConfig for ServiceAccount sa of shipbot's namespace.
func serviceAccountConfigOf(t *testing.T, sa string) *rest.Config {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}
	tok, err := kc.Client().CoreV1().ServiceAccounts(namespace).CreateToken(t.Context(), sa, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	admin := kc.RESTConfig()
	return &rest.Config{
		Host:            admin.Host,
		TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData},
		BearerToken:     tok.Status.Token,
		QPS:             50, Burst: 100,
	}
}

// whoami checks that a configuration really is the ServiceAccount, so that
// what it manages proves the ServiceAccount's permissions, not the admin's.
func whoami(t *testing.T, rc *rest.Config) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ssr, err := cs.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}
	if u := ssr.Status.UserInfo.Username; u != saUser {
		t.Fatalf("the token authenticates as %q, want %s", u, saUser)
	}
}

// intakeUser is the ServiceAccount of deploy/intake.yaml's replicas.
const intakeUser = "system:serviceaccount:" + namespace + ":shipbot-intake"

// The intake replicas may store deliveries and read one back, and nothing else.
func TestIntakeServiceAccountAccess(t *testing.T) {
	install(t)
	for _, c := range []struct {
		a     access
		allow bool
	}{
		{access{verb: "create", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "kubestore.Inbox.Accept"}, true},
		{access{verb: "get", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "kubestore.Inbox.Accept: a redelivery"}, true},
		{access{verb: "list", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "reading others' deliveries is serve's"}, false},
		{access{verb: "delete", group: "shipbot.io", resource: "deliveries", ns: namespace, why: "removing deliveries is serve's"}, false},
		{access{verb: "create", group: "shipbot.io", resource: "deliveries", ns: envNS, why: "deliveries live in shipbot's namespace only"}, false},
		{access{verb: "get", resource: "secrets", ns: namespace, why: "its secret is in its environment"}, false},
		{access{verb: "patch", group: "apps", resource: "deployments", ns: envNS, why: "intake acts on nothing"}, false},
		{access{verb: "list", resource: "namespaces", why: "intake acts on nothing"}, false},
	} {
		t.Run(c.a.String(), func(t *testing.T) {
			allowed, reason := reviewAs(t, intakeUser, c.a)
			if allowed != c.allow {
				t.Errorf("%s may %s: %v, want %v: %s (%s)", intakeUser, c.a, allowed, c.allow, c.a.why, reason)
			}
		})
	}
}
