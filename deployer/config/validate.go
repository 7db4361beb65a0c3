package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// validator collects every problem in one pass, so a user fixes the file once
// rather than once per error.
type validator struct {
	file string
	root *yaml.Node
	errs []error
}

func (v *validator) failf(path []any, format string, args ...any) {
	v.errs = append(v.errs, &Error{
		File: v.file,
		Line: lineOf(v.root, path),
		Path: pathString(path),
		Msg:  fmt.Sprintf(format, args...),
	})
}

func (v *validator) err() error { return errors.Join(v.errs...) }

// at appends to a path without aliasing the caller's slice.
func at(path []any, more ...any) []any {
	return append(slices.Clip(path), more...)
}

func (c *Config) validate(v *validator) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		v.failf([]any{"listen"}, "%q is not host:port (e.g. :8080)", c.Listen)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		v.failf([]any{"log", "level"}, "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		v.failf([]any{"log", "format"}, "%q is not one of text, json", c.Log.Format)
	}
	c.GitLab.validate(v)
	if c.Webhook.MaxBodyBytes < 1024 {
		v.failf([]any{"webhook", "maxBodyBytes"}, "%d is too small; GitLab deliveries need at least 1024 bytes", c.Webhook.MaxBodyBytes)
	}
	clusters := map[string]bool{}
	for i, cl := range c.Clusters {
		cl.validate(v, []any{"clusters", i}, clusters)
	}
	switch c.Store.Backend {
	case BackendBbolt:
	case BackendKubernetes:
		if c.Webhook.Inbox == nil {
			v.failf([]any{"store", "backend"}, "kubernetes keeps the store in webhook.inbox's cluster and namespace; set webhook.inbox")
		}
	default:
		v.failf([]any{"store", "backend"}, "%q is not one of bbolt, kubernetes", c.Store.Backend)
	}
	if in := c.Webhook.Inbox; in != nil {
		in.validate(v, clusters)
		if c.Webhook.MaxBodyBytes > MaxClusterInboxBody {
			v.failf([]any{"webhook", "maxBodyBytes"}, "%d is more than the %d bytes a Delivery object holds; lower it, or keep webhook.inbox unset", c.Webhook.MaxBodyBytes, MaxClusterInboxBody)
		}
	}
	if len(c.Clusters) == 0 {
		v.failf([]any{"clusters"}, "at least one cluster is required")
	}
	envs := map[string]bool{}
	for i := range c.Environments {
		c.Environments[i].validate(v, []any{"environments", i}, envs, clusters)
	}
	apps := map[string]bool{}
	for i, a := range c.Apps {
		a.validate(v, []any{"apps", i}, apps, envs)
		if a.Source != nil && a.Source.FromRepo() && c.GitLab.Token.IsZero() {
			v.failf([]any{"apps", i, "source", "from"}, "app %q reads its repository through the GitLab API: set gitlab.token", a.Name)
		}
	}
	c.validateProjects(v, envs)
	c.validateHooks(v)
	c.Commands.validate(v)
	c.validatePreviews(v, clusters)
	c.validateSurfaces(v)
	c.validateStore(v)
	if c.Dashboard != nil {
		c.Dashboard.validate(v, []any{"dashboard"}, c)
	}
}

func (g GitLab) validate(v *validator) {
	u, err := url.Parse(g.BaseURL)
	switch {
	case g.BaseURL == "":
		v.failf([]any{"gitlab", "baseURL"}, "required, e.g. https://gitlab.example.com")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.failf([]any{"gitlab", "baseURL"}, "%q is not an http(s) URL", g.BaseURL)
	}
	if g.WebhookSecret.IsZero() {
		v.failf([]any{"gitlab", "webhookSecret"}, "required: without it anyone could trigger deploys; use ${ENV_VAR} to keep it out of the file")
	}
}

func (cl Cluster) validate(v *validator, path []any, seen map[string]bool) {
	checkName(v, at(path, "name"), cl.Name, seen)
	switch {
	case cl.InCluster && cl.Kubeconfig != "":
		v.failf(at(path, "inCluster"), "set either inCluster or kubeconfig, not both")
	case !cl.InCluster && cl.Kubeconfig == "":
		v.failf(path, "cluster %q needs kubeconfig (with an optional context) or inCluster: true", cl.Name)
	case cl.InCluster && cl.Context != "":
		v.failf(at(path, "context"), "context only applies with kubeconfig")
	}
}

func (e *Environment) validate(v *validator, path []any, seen, clusters map[string]bool) {
	checkName(v, at(path, "name"), e.Name, seen)
	for i, w := range e.Freezes {
		validateFreeze(v, at(path, "freezes", i), e.Name, w)
	}
	if len(e.Clusters) == 0 {
		v.failf(at(path, "clusters"), "environment %q needs at least one cluster", e.Name)
	}
	for i, c := range e.Clusters {
		if !clusters[c] {
			v.failf(at(path, "clusters", i), "unknown cluster %q; define it under clusters", c)
		}
	}
	// A preview-only environment gets a namespace per merge request instead.
	previewOnly := e.Refs.MergeRequests && len(e.Refs.Branches)+len(e.Refs.Tags) == 0
	if !previewOnly || e.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(e.Namespace) {
			v.failf(at(path, "namespace"), "%q is not a valid namespace: %s", e.Namespace, msg)
		}
	}
	e.branches = compileAll(v, at(path, "refs", "branches"), e.Refs.Branches)
	e.tags = compileAll(v, at(path, "refs", "tags"), e.Refs.Tags)
	if len(e.Refs.Branches)+len(e.Refs.Tags) == 0 && !e.Refs.MergeRequests {
		v.failf(at(path, "refs"), "environment %q has no ref rules: give branches, tags or mergeRequests: true", e.Name)
	}
	if !slices.Contains([]string{AccessDeveloper, AccessMaintainer, AccessOwner}, e.Access) {
		v.failf(at(path, "access"), "%q is not one of developer, maintainer, owner", e.Access)
	}
	if e.Approvals < 0 || e.Approvals > 10 {
		v.failf(at(path, "approvals"), "must be from 1 to 10, got %d", e.Approvals)
	}
}

func compileAll(v *validator, path []any, exprs []string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for i, s := range exprs {
		re, err := regexp.Compile(s)
		if err != nil {
			v.failf(at(path, i), "bad regular expression %q: %v", s, err)
			continue
		}
		out = append(out, re)
	}
	return out
}

// sampleImage is what an image template is tried against at load time, so a
// typo such as {{.Sha}} fails now rather than at the first deploy.
var sampleImage = ImageData{Registry: "registry.example.com", Project: "group/app", App: "app", SHA: strings.Repeat("0", 40), ShortSHA: "00000000", Ref: "main", Environment: "dev"}

func (a App) validate(v *validator, path []any, seen, envs map[string]bool) {
	checkName(v, at(path, "name"), a.Name, seen)
	if strings.Count(a.Project, "/") < 1 || strings.HasPrefix(a.Project, "/") || strings.HasSuffix(a.Project, "/") {
		v.failf(at(path, "project"), "%q is not a GitLab project path such as group/app", a.Project)
	}
	a.validateSource(v, path)
	if _, err := a.ImageFor(sampleImage); err != nil {
		v.failf(at(path, "image"), "%v", err)
	}
	if a.Trigger != TriggerPipeline && a.Trigger != TriggerPush {
		v.failf(at(path, "trigger"), "%q is not one of pipeline, push", a.Trigger)
	}
	if a.RolloutTimeout.Duration < 0 {
		v.failf(at(path, "rolloutTimeout"), "must be positive")
	}
	a.Params.validate(v, at(path, "params"))
	a.validateSourceParams(v, at(path, "params"), a.Params, nil)
	validateRelease(v, at(path, "release"), fmt.Sprintf("app %q", a.Name), a.Release)
	if len(a.Environments) == 0 {
		v.failf(at(path, "environments"), "app %q deploys nowhere: list at least one environment", a.Name)
	}
	for _, name := range sortedKeys(a.Environments) {
		if !envs[name] {
			v.failf(at(path, "environments", name), "unknown environment %q; define it under environments", name)
		}
		e := a.Environments[name]
		e.Params.validate(v, at(path, "environments", name))
		a.validateSourceParams(v, at(path, "environments", name), e.Params, e.Helm)
		validateRelease(v, at(path, "environments", name, "release"), fmt.Sprintf("app %q, environment %q", a.Name, name), e.Release)
	}
}

func (p Params) validate(v *validator, path []any) {
	if p.Replicas != nil && *p.Replicas < 0 {
		v.failf(at(path, "replicas"), "must be 0 or more, got %d", *p.Replicas)
	}
	for i, port := range p.Ports {
		if port.Port < 1 || port.Port > 65535 {
			v.failf(at(path, "ports", i, "port"), "%d is not a port number (1-65535)", port.Port)
		}
		if port.Protocol != "" && port.Protocol != "TCP" && port.Protocol != "UDP" && port.Protocol != "SCTP" {
			v.failf(at(path, "ports", i, "protocol"), "%q is not one of TCP, UDP, SCTP", port.Protocol)
		}
	}
	for _, name := range sortedKeys(p.Env) {
		for _, msg := range validation.IsEnvVarName(name) {
			v.failf(at(path, "env", name), "%q is not a valid environment variable name: %s", name, msg)
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(p.Host) {
		if p.Host != "" {
			v.failf(at(path, "host"), "%q is not a valid host name: %s", p.Host, msg)
		}
	}
	r := p.Resources
	for key, q := range map[string]string{"cpuRequest": r.CPURequest, "memoryRequest": r.MemoryRequest, "cpuLimit": r.CPULimit, "memoryLimit": r.MemoryLimit} {
		if _, err := resource.ParseQuantity(q); q != "" && err != nil {
			v.failf(at(path, "resources", key), "%q is not a Kubernetes quantity such as 100m or 256Mi", q)
		}
	}
}

func checkName(v *validator, path []any, name string, seen map[string]bool) {
	if name == "" {
		v.failf(path, "name is required")
		return
	}
	for _, msg := range validation.IsDNS1123Label(name) {
		v.failf(path, "%q is not a valid name: %s", name, msg)
	}
	if seen[name] {
		v.failf(path, "duplicate name %q", name)
	}
	seen[name] = true
}

// ImageData is what an app's image template can use.
type ImageData struct {
	Registry, Project, App, SHA, ShortSHA, Ref, Environment string
}

// ImageFor renders the app's image reference for one build.
func (a App) ImageFor(d ImageData) (string, error) {
	if d.Registry == "" {
		d.Registry = a.Registry
	}
	t, err := template.New("image").Option("missingkey=error").Parse(a.Image)
	if err != nil {
		return "", fmt.Errorf("bad image template %q: %w", a.Image, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("bad image template %q: %w", a.Image, err)
	}
	img := strings.TrimPrefix(b.String(), "/")
	if img == "" || strings.ContainsAny(img, " \t\n") {
		return "", fmt.Errorf("image template %q gives %q, which is not an image reference", a.Image, img)
	}
	return img, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lineOf finds the line of the node at path, or of its nearest ancestor that
// exists, so that even a missing key points somewhere useful.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		next, at := child(n, p)
		if next == nil {
			break
		}
		n, line = next, at
	}
	return line
}

// child returns the node under n at p and the line to report for it: for a
// mapping entry that is the key's line, where a reader's eye goes.
func child(n *yaml.Node, p any) (*yaml.Node, int) {
	switch key := p.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil, 0
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1], n.Content[i].Line
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && key < len(n.Content) {
			return n.Content[key], n.Content[key].Line
		}
	}
	return nil, 0
}

func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, p)
		}
	}
	return b.String()
}

func (in *ClusterInbox) validate(v *validator, clusters map[string]bool) {
	if !clusters[in.Cluster] {
		v.failf([]any{"webhook", "inbox", "cluster"}, "%q is not one of clusters[].name", in.Cluster)
	}
	for _, msg := range validation.IsDNS1123Label(in.Namespace) {
		v.failf([]any{"webhook", "inbox", "namespace"}, "%q: %s", in.Namespace, msg)
	}
}
