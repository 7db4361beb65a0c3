package config

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Previews configures merge request preview environments. They are on when an
// environment has refs.mergeRequests: true; that environment's parameters are
// what apps get in a preview.
type Previews struct {
	// Cluster hosts the preview namespaces; default: the preview environment's first cluster.
	Cluster string `yaml:"cluster"`
	// Domain is the parent of preview hosts: mr-<iid>-<app>.<domain>.
	Domain string `yaml:"domain"`
	// NamespacePrefix starts every preview namespace's name.
	NamespacePrefix string `yaml:"namespacePrefix"`
	// TTL removes a preview idle this long since its last commit; 0 keeps them.
	TTL Duration `yaml:"ttl"`
	// KeepLabel on a merge request exempts its preview from the TTL.
	KeepLabel string `yaml:"keepLabel"`
	// GCInterval is how often previews are checked against GitLab.
	GCInterval Duration `yaml:"gcInterval"`
	// Quota bounds what one preview namespace may request.
	Quota Quota `yaml:"quota"`
	// Limits are the defaults and ceilings per container (a LimitRange).
	Limits Limits `yaml:"limits"`
}

// Quota is a preview namespace's ResourceQuota.
type Quota struct {
	CPU    string `yaml:"cpu"`    // requests.cpu
	Memory string `yaml:"memory"` // requests.memory
	Pods   string `yaml:"pods"`
}

// Limits is a preview namespace's LimitRange for containers.
type Limits struct {
	DefaultCPU           string `yaml:"defaultCPU"`
	DefaultMemory        string `yaml:"defaultMemory"`
	DefaultCPURequest    string `yaml:"defaultCPURequest"`
	DefaultMemoryRequest string `yaml:"defaultMemoryRequest"`
	MaxCPU               string `yaml:"maxCPU"`
	MaxMemory            string `yaml:"maxMemory"`
}

func (p *Previews) setDefaults() {
	if p.NamespacePrefix == "" {
		p.NamespacePrefix = "preview-"
	}
	if p.Domain == "" {
		p.Domain = "preview.local"
	}
	if p.KeepLabel == "" {
		p.KeepLabel = "preview::keep"
	}
	if p.GCInterval.Duration == 0 {
		p.GCInterval.Duration = 10 * time.Minute
	}
	q := &p.Quota
	q.CPU, q.Memory, q.Pods = or(q.CPU, "2"), or(q.Memory, "4Gi"), or(q.Pods, "20")
	l := &p.Limits
	l.DefaultCPU, l.DefaultMemory = or(l.DefaultCPU, "500m"), or(l.DefaultMemory, "512Mi")
	l.DefaultCPURequest, l.DefaultMemoryRequest = or(l.DefaultCPURequest, "50m"), or(l.DefaultMemoryRequest, "64Mi")
	l.MaxCPU, l.MaxMemory = or(l.MaxCPU, "2"), or(l.MaxMemory, "2Gi")
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// PreviewEnvironment returns the environment that takes merge requests.
func (c *Config) PreviewEnvironment() (Environment, bool) {
	for _, e := range c.Environments {
		if e.Refs.MergeRequests {
			return e, true
		}
	}
	return Environment{}, false
}

// PreviewCluster is the cluster that hosts previews, if previews are on.
func (c *Config) PreviewCluster() (string, bool) {
	env, ok := c.PreviewEnvironment()
	if !ok {
		return "", false
	}
	if c.Previews.Cluster != "" {
		return c.Previews.Cluster, true
	}
	return env.Clusters[0], true
}

func (c *Config) validatePreviews(v *validator, clusters map[string]bool) {
	path := []any{"previews"}
	n := 0
	for _, e := range c.Environments {
		if e.Refs.MergeRequests {
			n++
		}
	}
	if n > 1 {
		v.failf([]any{"environments"}, "only one environment may set refs.mergeRequests: true, %d do", n)
	}
	p := c.Previews
	if p.Cluster != "" && !clusters[p.Cluster] {
		v.failf(at(path, "cluster"), "unknown cluster %q; define it under clusters", p.Cluster)
	}
	for _, msg := range validation.IsDNS1123Subdomain(p.Domain) {
		v.failf(at(path, "domain"), "%q is not a valid domain: %s", p.Domain, msg)
	}
	if len(p.NamespacePrefix) > 20 || len(validation.IsDNS1123Label(strings.TrimSuffix(p.NamespacePrefix, "-"))) > 0 {
		v.failf(at(path, "namespacePrefix"), "%q must be a short DNS label prefix (at most 20 characters, a-z, 0-9, -)", p.NamespacePrefix)
	}
	if p.TTL.Duration < 0 {
		v.failf(at(path, "ttl"), "must not be negative")
	}
	if p.GCInterval.Duration < time.Second {
		v.failf(at(path, "gcInterval"), "must be at least 1s")
	}
	quantities := map[string]string{
		"quota.cpu": p.Quota.CPU, "quota.memory": p.Quota.Memory, "quota.pods": p.Quota.Pods,
		"limits.defaultCPU": p.Limits.DefaultCPU, "limits.defaultMemory": p.Limits.DefaultMemory,
		"limits.defaultCPURequest": p.Limits.DefaultCPURequest, "limits.defaultMemoryRequest": p.Limits.DefaultMemoryRequest,
		"limits.maxCPU": p.Limits.MaxCPU, "limits.maxMemory": p.Limits.MaxMemory,
	}
	for _, key := range sortedKeys(quantities) {
		if _, err := resource.ParseQuantity(quantities[key]); err != nil {
			parts := strings.Split(key, ".")
			v.failf(at(path, parts[0], parts[1]), "%q is not a Kubernetes quantity: %v", quantities[key], fmt.Sprint(err))
		}
	}
}
