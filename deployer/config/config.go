// Package config loads and validates shipbot.yaml, the one file that tells
// shipbot where to listen, how to reach GitLab and which refs deploy where.
//
// Loading is strict: an unknown key, a wrong type or a bad value fails with
// the file name, the line and what is wrong, before anything starts.
package config

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shipbot/shipbot/deployer/release"
)

// Trigger says which GitLab event starts a deploy of an app.
type Trigger string

// Triggers: the default waits for the pipeline because the image only exists
// once CI has built it.
const (
	TriggerPipeline Trigger = "pipeline"
	TriggerPush     Trigger = "push"
)

// DefaultImage is the image reference template used when an app sets none.
const DefaultImage = "{{.Registry}}/{{.Project}}:{{.ShortSHA}}"

// Config is the whole of shipbot.yaml.
type Config struct {
	Listen       string        `yaml:"listen"`
	Log          Log           `yaml:"log"`
	GitLab       GitLab        `yaml:"gitlab"`
	Webhook      Webhook       `yaml:"webhook"`
	Store        Store         `yaml:"store"`
	Clusters     []Cluster     `yaml:"clusters"`
	Environments []Environment `yaml:"environments"`
	Apps         []App         `yaml:"apps"`
	// Projects say what each project's own .shipbot.yaml may declare.
	Projects []Project `yaml:"projects"`
	Previews Previews  `yaml:"previews"`
	// Commands tunes the worker of merge request comment commands.
	Commands Commands `yaml:"commands"`
	// PublicURL is shipbot's own address as users reach it, the base of links in chat.
	PublicURL string    `yaml:"publicURL"`
	API       API       `yaml:"api"`
	Slack     *Slack    `yaml:"slack"`    // nil when Slack is off
	DingTalk  *DingTalk `yaml:"dingtalk"` // nil when DingTalk is off
	Notify    Notify    `yaml:"notify"`
	Users     []User    `yaml:"users"`
	// Dashboard is the read-only web dashboard at /; nil when it is off.
	Dashboard *Dashboard `yaml:"dashboard"`
	// SignIn is sign-in with GitLab for the web pages; nil when it is off.
	SignIn *SignIn `yaml:"signin"`
	// ForbidSelfApproval bars whoever started a release (the tag's pipeline
	// user) from continuing or promoting it.
	ForbidSelfApproval bool `yaml:"forbidSelfApproval"`

	file string
	sum  [sha256.Size]byte // of the bytes parsed
}

// Log sets the log level and format.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// GitLab says how to reach the GitLab API and how webhooks authenticate.
type GitLab struct {
	BaseURL       string `yaml:"baseURL"`
	Token         Secret `yaml:"token"`
	WebhookSecret Secret `yaml:"webhookSecret"`
}

// Webhook tunes webhook intake.
type Webhook struct {
	// MaxBodyBytes caps a delivery's size; GitLab's largest pushes stay well below 5 MiB.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// Inbox, when set, keeps acknowledged deliveries in a cluster, where
	// `shipbot intake` replicas store them too, until the engine takes them.
	Inbox *ClusterInbox `yaml:"inbox"`
}

// ClusterInbox is a namespace whose Delivery objects (deploy/crds) hold
// the webhooks acknowledged and not yet taken by the engine.
type ClusterInbox struct {
	Cluster   string `yaml:"cluster"`   // one of clusters[].name
	Namespace string `yaml:"namespace"` // shipbot's own, e.g. shipbot
}

// MaxClusterInboxBody is the largest body a Delivery object holds; see
// kubestore.MaxBody.
const MaxClusterInboxBody = 768 << 10

// Store locates the bbolt file and says how long it keeps old records.
type Store struct {
	Path      string    `yaml:"path"`
	Retention Retention `yaml:"retention"`
	// Backend is bbolt (the file at Path is the store) or kubernetes:
	// replicas elect a leader on a Lease, the leader journals every write
	// as objects in webhook.inbox's namespace and keeps the file at Path as
	// its working copy, rebuilt from them when it takes over.
	Backend string `yaml:"backend"`
}

// Store backends.
const (
	BackendBbolt      = "bbolt"
	BackendKubernetes = "kubernetes"
)

// Cluster names a Kubernetes API shipbot deploys to.
type Cluster struct {
	Name       string `yaml:"name"`
	Kubeconfig string `yaml:"kubeconfig"`
	Context    string `yaml:"context"`
	InCluster  bool   `yaml:"inCluster"`
}

// Environment is a deploy target: a namespace in one or more clusters, fed by
// the refs that match its rules.
type Environment struct {
	Name      string   `yaml:"name"`
	Clusters  []string `yaml:"clusters"`
	Namespace string   `yaml:"namespace"`
	Refs      Refs     `yaml:"refs"`
	// Access is the GitLab role needed to act on releases here; see RequiredAccess.
	Access string `yaml:"access"`
	// Approvals is how many different people must continue or promote a
	// stage here before it moves on; 1 when 0.
	Approvals int `yaml:"approvals"`
	// Freezes are recurring windows in which releases here wait; GitLab's
	// own freeze periods of each app's project apply as well.
	Freezes []release.FreezeWindow `yaml:"freezes"`

	branches []*regexp.Regexp
	tags     []*regexp.Regexp
}

// Refs are the rules that map GitLab refs to an environment.
type Refs struct {
	Branches      []string `yaml:"branches"`
	Tags          []string `yaml:"tags"`
	MergeRequests bool     `yaml:"mergeRequests"`
}

// GitLab roles an environment can require, lowest first.
const (
	AccessDeveloper  = "developer"
	AccessMaintainer = "maintainer"
	AccessOwner      = "owner"
)

// RequiredAccess is the GitLab role a user needs to promote, pause or roll
// back releases in this environment: access when set, else maintainer where
// tags deploy (production) and developer elsewhere.
func (e Environment) RequiredAccess() string {
	switch {
	case e.Access != "":
		return e.Access
	case len(e.Refs.Tags) > 0:
		return AccessMaintainer
	default:
		return AccessDeveloper
	}
}

// App maps a GitLab project to the source of its manifests and its
// per-environment parameters.
type App struct {
	Name    string `yaml:"name"`
	Project string `yaml:"project"`
	// ProjectID pins Project to its GitLab id, as projects[].id does.
	ProjectID int64 `yaml:"projectID"`
	// Source is where the app's manifests come from. Template and
	// TemplateDir are its shorthand, kept for the configs that use them;
	// once loaded, Source is set to whichever was written.
	Source         *Source  `yaml:"source"`
	Template       string   `yaml:"template"`
	TemplateDir    string   `yaml:"templateDir"`
	Registry       string   `yaml:"registry"`
	Image          string   `yaml:"image"`
	Trigger        Trigger  `yaml:"trigger"`
	Job            string   `yaml:"job"`
	RolloutTimeout Duration `yaml:"rolloutTimeout"`
	Params         Params   `yaml:"params"`
	// Release is the staged release for every environment the app releases
	// to by tag, unless that environment sets its own; nil means a plain deploy.
	Release      *release.Spec             `yaml:"release"`
	Environments map[string]AppEnvironment `yaml:"environments"`

	shorthand bool // Source came from Template or TemplateDir
}

// AppEnvironment is an app's settings in one environment: parameters that
// override the app's, and optionally its own release spec.
type AppEnvironment struct {
	Params `yaml:",inline"`
	// Release replaces the app's release spec wholesale in this environment.
	Release *release.Spec `yaml:"release"`
	// Helm adds values files and values to a helm source's, here only.
	Helm *HelmOverride `yaml:"helm"`

	// untagged marks, once loaded, an environment without tag rules: the
	// app's release spec does not reach it, only its own does.
	untagged bool
}

// Params are the values an app's templates see in one environment. Fields
// left empty in an environment fall back to the app's params.
type Params struct {
	Replicas  *int32            `yaml:"replicas"`
	Ports     []Port            `yaml:"ports"`
	Env       map[string]string `yaml:"env"`
	Host      string            `yaml:"host"`
	Config    map[string]string `yaml:"config"`
	Resources Resources         `yaml:"resources"`
	Values    map[string]any    `yaml:"values"`
}

// Port is a container and Service port.
type Port struct {
	Name     string `yaml:"name"`
	Port     int32  `yaml:"port"`
	Protocol string `yaml:"protocol"`
}

// Resources are container requests and limits, as Kubernetes quantities.
type Resources struct {
	CPURequest    string `yaml:"cpuRequest"`
	MemoryRequest string `yaml:"memoryRequest"`
	CPULimit      string `yaml:"cpuLimit"`
	MemoryLimit   string `yaml:"memoryLimit"`
}

// Duration is a time.Duration written as "90s" or "5m".
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as 90s, 5m or 7d", n.Line, s)}}
	}
	d.Duration = v
	return nil
}

// parseDuration is time.ParseDuration, and whole days: "7d".
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad number of days %q", days)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Load reads, decodes and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes and validates config text; file is used only in messages.
func Parse(file string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: file, Msg: trimYAML(err.Error())}
	}
	if root.Kind == 0 {
		return nil, &Error{File: file, Msg: "the file is empty"}
	}
	cfg := &Config{file: file, sum: sha256.Sum256(data)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, yamlError(file, err)
	}
	cfg.setDefaults()
	v := &validator{file: file, root: &root}
	cfg.validate(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Webhook.MaxBodyBytes == 0 && c.Webhook.Inbox != nil {
		c.Webhook.MaxBodyBytes = MaxClusterInboxBody
	}
	if c.Webhook.MaxBodyBytes == 0 {
		c.Webhook.MaxBodyBytes = 5 << 20
	}
	if c.Store.Backend == "" {
		c.Store.Backend = BackendBbolt
	}
	if c.Store.Path == "" {
		c.Store.Path = "shipbot.db"
	}
	c.Store.Retention.setDefaults()
	c.Previews.setDefaults()
	c.Commands.setDefaults()
	c.setSurfaceDefaults()
	tagged := map[string]bool{}
	for i := range c.Environments {
		e := &c.Environments[i]
		e.Access = e.RequiredAccess()
		tagged[e.Name] = len(e.Refs.Tags) > 0
	}
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.Image == "" {
			a.Image = DefaultImage
		}
		if a.Trigger == "" {
			a.Trigger = TriggerPipeline
		}
		a.setSourceDefaults()
		if a.RolloutTimeout.Duration == 0 {
			a.RolloutTimeout.Duration = 5 * time.Minute
		}
		a.setReleaseDefaults(tagged)
	}
}

// File is the path the config was loaded from.
func (c *Config) File() string { return c.file }

// Sum is the SHA-256 of the bytes the config was parsed from: a watcher
// compares the file with it to tell whether the file changed since.
func (c *Config) Sum() [sha256.Size]byte { return c.sum }

// SameAs reports whether c and o say the same, whatever file and bytes
// each was read from.
func (c *Config) SameAs(o *Config) bool {
	a, b := *c, *o
	a.file, a.sum, b.file, b.sum = "", [sha256.Size]byte{}, "", [sha256.Size]byte{}
	return reflect.DeepEqual(a, b)
}

// Cluster returns the cluster with the given name.
func (c *Config) Cluster(name string) (Cluster, bool) {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl, true
		}
	}
	return Cluster{}, false
}

// Environment returns the environment with the given name.
func (c *Config) Environment(name string) (Environment, bool) {
	for _, e := range c.Environments {
		if e.Name == name {
			return e, true
		}
	}
	return Environment{}, false
}

// App returns the app with the given name.
func (c *Config) App(name string) (App, bool) {
	for _, a := range c.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// MatchBranch reports whether a branch deploys to this environment.
func (e Environment) MatchBranch(branch string) bool { return matchAny(e.branches, branch) }

// MatchTag reports whether a tag deploys to this environment.
func (e Environment) MatchTag(tag string) bool { return matchAny(e.tags, tag) }

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// ParamsFor merges the app's params with its params for one environment;
// the environment's win field by field.
func (a App) ParamsFor(env string) (Params, bool) {
	e, ok := a.Environments[env]
	if !ok {
		return Params{}, false
	}
	p := a.Params
	if e.Replicas != nil {
		p.Replicas = e.Replicas
	}
	if len(e.Ports) > 0 {
		p.Ports = e.Ports
	}
	if e.Host != "" {
		p.Host = e.Host
	}
	if (e.Resources != Resources{}) {
		p.Resources = e.Resources
	}
	p.Env = mergeMap(p.Env, e.Env)
	p.Config = mergeMap(p.Config, e.Config)
	p.Values = mergeMap(p.Values, e.Values)
	return p, true
}

func mergeMap[V any](base, over map[string]V) map[string]V {
	if len(over) == 0 {
		return base
	}
	out := make(map[string]V, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
