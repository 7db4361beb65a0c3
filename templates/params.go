package templates

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ErrInvalidParams marks a Render that was refused because its Params are invalid.
var ErrInvalidParams = errors.New("invalid params")

// Label keys every built-in object carries; they are reserved so Params.Labels
// cannot break the Deployment selector.
const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelApp       = "app"
	managedBy      = "shipbot"
)

// Params are the values a template sees as `.`.
type Params struct {
	App         string            // DNS-1123 label; names objects and sets the `app` label
	Project     string            // GitLab project path, e.g. group/web
	Environment string            // e.g. dev
	Namespace   string            // set on namespaced objects whose template leaves it empty
	Image       string            // container image reference
	Replicas    int32             // desired pod count
	Ports       []Port            // container ports; the first is the one the Service exposes
	Env         []EnvVar          // container environment, in order
	Host        string            // when set, web-service renders an Ingress
	Config      map[string]string // when non-empty, web-service renders a ConfigMap and envFroms it
	Labels      map[string]string // extra labels on every object and pod template
	Annotations map[string]string // extra annotations on every object and pod template
	Resources   Resources         // container requests and limits, optional
	Values      map[string]any    // free-form values for custom templates
}

// Port is a container port.
type Port struct {
	Name     string `json:"name,omitempty"` // IANA service name, optional
	Port     int32  `json:"port"`
	Protocol string `json:"protocol,omitempty"` // TCP, UDP or SCTP; TCP when empty
}

// EnvVar is one container environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Resources are a container's requests and limits; JSON tags let templates print them with toYaml.
type Resources struct {
	Requests Quantities `json:"requests,omitzero"`
	Limits   Quantities `json:"limits,omitzero"`
}

// Quantities are CPU and memory amounts in Kubernetes quantity syntax, e.g. 100m or 128Mi.
type Quantities struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// IsZero reports whether no request or limit is set; templates use it to omit `resources:`.
func (r Resources) IsZero() bool { return r == Resources{} }

// SelectorLabels select the app's pods; they must never change, as a Deployment's selector is immutable.
func (p Params) SelectorLabels() map[string]string {
	return map[string]string{labelName: p.App, labelInstance: p.App}
}

// ObjectLabels are Params.Labels plus the standard labels, for every object and pod template.
func (p Params) ObjectLabels() map[string]string {
	out := make(map[string]string, len(p.Labels)+4)
	maps.Copy(out, p.Labels)
	maps.Copy(out, p.SelectorLabels())
	out[labelManagedBy] = managedBy
	out[labelApp] = p.App
	return out
}

// Validate reports every invalid field at once, wrapped in ErrInvalidParams.
func (p Params) Validate() error {
	var errs field.ErrorList
	errs = append(errs, dnsLabel(field.NewPath("App"), p.App, true)...)
	errs = append(errs, dnsLabel(field.NewPath("Namespace"), p.Namespace, false)...)
	if strings.TrimSpace(p.Image) == "" {
		errs = append(errs, field.Required(field.NewPath("Image"), ""))
	} else if strings.TrimSpace(p.Image) != p.Image {
		errs = append(errs, field.Invalid(field.NewPath("Image"), p.Image, "must not have leading or trailing whitespace"))
	}
	if p.Replicas < 0 {
		errs = append(errs, field.Invalid(field.NewPath("Replicas"), p.Replicas, "must be greater than or equal to 0"))
	}
	errs = append(errs, validatePorts(field.NewPath("Ports"), p.Ports)...)
	errs = append(errs, validateEnv(field.NewPath("Env"), p.Env)...)
	errs = append(errs, validateHost(field.NewPath("Host"), p.Host)...)
	errs = append(errs, validateKeys(field.NewPath("Config"), p.Config, validation.IsConfigMapKey)...)
	errs = append(errs, validateLabels(field.NewPath("Labels"), p.Labels)...)
	errs = append(errs, validateKeys(field.NewPath("Annotations"), p.Annotations, validation.IsQualifiedName)...)
	errs = append(errs, validateResources(field.NewPath("Resources"), p.Resources)...)
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%w: %s", ErrInvalidParams, strings.Join(msgs, "; "))
}

// withDefaults returns a copy with defaults filled in, so templates need not repeat them.
func (p Params) withDefaults() Params {
	ports := make([]Port, len(p.Ports))
	for i, port := range p.Ports {
		if port.Protocol == "" {
			port.Protocol = "TCP"
		}
		ports[i] = port
	}
	p.Ports = ports
	return p
}

func dnsLabel(path *field.Path, v string, required bool) field.ErrorList {
	if v == "" {
		if required {
			return field.ErrorList{field.Required(path, "")}
		}
		return nil
	}
	return invalid(path, v, validation.IsDNS1123Label(v))
}

func validatePorts(path *field.Path, ports []Port) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		p := path.Index(i)
		errs = append(errs, invalid(p.Child("Port"), port.Port, validation.IsValidPortNum(int(port.Port)))...)
		if port.Name != "" {
			errs = append(errs, invalid(p.Child("Name"), port.Name, validation.IsValidPortName(port.Name))...)
			if names[port.Name] {
				errs = append(errs, field.Duplicate(p.Child("Name"), port.Name))
			}
			names[port.Name] = true
		}
		switch port.Protocol {
		case "", "TCP", "UDP", "SCTP":
		default:
			errs = append(errs, field.NotSupported(p.Child("Protocol"), port.Protocol, []string{"TCP", "UDP", "SCTP"}))
		}
	}
	return errs
}

func validateEnv(path *field.Path, env []EnvVar) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		errs = append(errs, invalid(path.Index(i).Child("Name"), e.Name, validation.IsEnvVarName(e.Name))...)
	}
	return errs
}

func validateHost(path *field.Path, host string) field.ErrorList {
	if host == "" {
		return nil
	}
	if strings.HasPrefix(host, "*.") {
		return invalid(path, host, validation.IsWildcardDNS1123Subdomain(host))
	}
	return invalid(path, host, validation.IsDNS1123Subdomain(host))
}

func validateLabels(path *field.Path, labels map[string]string) field.ErrorList {
	errs := validateKeys(path, labels, validation.IsQualifiedName)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		switch k {
		case labelName, labelInstance, labelManagedBy, labelApp:
			errs = append(errs, field.Forbidden(path.Key(k), "is a standard label set by shipbot"))
		}
		errs = append(errs, invalid(path.Key(k), labels[k], validation.IsValidLabelValue(labels[k]))...)
	}
	return errs
}

func validateKeys(path *field.Path, m map[string]string, check func(string) []string) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(m)) {
		errs = append(errs, invalid(path.Key(k), k, check(k))...)
	}
	return errs
}

func validateResources(path *field.Path, r Resources) field.ErrorList {
	var errs field.ErrorList
	for _, q := range []struct {
		path *field.Path
		v    string
	}{
		{path.Child("Requests", "CPU"), r.Requests.CPU},
		{path.Child("Requests", "Memory"), r.Requests.Memory},
		{path.Child("Limits", "CPU"), r.Limits.CPU},
		{path.Child("Limits", "Memory"), r.Limits.Memory},
	} {
		if q.v == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q.v); err != nil {
			errs = append(errs, field.Invalid(q.path, q.v, err.Error()))
		}
	}
	return errs
}

func invalid(path *field.Path, v any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, m := range msgs {
		errs = append(errs, field.Invalid(path, v, m))
	}
	return errs
}
