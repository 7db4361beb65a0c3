package templates

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Params)
		want   string // the field path the message must name; "" for valid
	}{
		{"valid", func(*Params) {}, ""},
		{"valid extras", func(p *Params) {
			p.Host = "*.example.com"
			p.Ports = append(p.Ports, Port{Port: 53, Protocol: "UDP"})
			p.Config = map[string]string{"app.yaml": "x"}
			p.Labels = map[string]string{"example.com/team": "a"}
			p.Resources.Limits.Memory = "1Gi"
			p.Namespace = ""
		}, ""},
		{"app missing", func(p *Params) { p.App = "" }, "App: Required value"},
		{"app not a DNS label", func(p *Params) { p.App = "Web_1" }, `App: Invalid value: "Web_1"`},
		{"app too long", func(p *Params) { p.App = strings.Repeat("a", 64) }, "App: Invalid value"},
		{"namespace", func(p *Params) { p.Namespace = "Dev" }, "Namespace: Invalid value"},
		{"image missing", func(p *Params) { p.Image = "" }, "Image: Required value"},
		{"image padded", func(p *Params) { p.Image = " web:1" }, "Image: Invalid value"},
		{"negative replicas", func(p *Params) { p.Replicas = -1 }, "Replicas: Invalid value: -1"},
		{"port zero", func(p *Params) { p.Ports[0].Port = 0 }, "Ports[0].Port: Invalid value: 0"},
		{"port too big", func(p *Params) { p.Ports = append(p.Ports, Port{Port: 65536}) }, "Ports[1].Port: Invalid value: 65536"},
		{"port name", func(p *Params) { p.Ports[0].Name = "HTTP_PORT" }, "Ports[0].Name: Invalid value"},
		{"duplicate port name", func(p *Params) { p.Ports = append(p.Ports, Port{Name: "http", Port: 81}) }, "Ports[1].Name: Duplicate value"},
		{"protocol", func(p *Params) { p.Ports[0].Protocol = "HTTP" }, "Ports[0].Protocol: Unsupported value"},
		{"env name", func(p *Params) { p.Env = []EnvVar{{Name: "OK"}, {Name: "1=BAD"}} }, "Env[1].Name: Invalid value"},
		{"env name empty", func(p *Params) { p.Env = []EnvVar{{Value: "x"}} }, "Env[0].Name: Invalid value"},
		{"host", func(p *Params) { p.Host = "web_app.example.com" }, "Host: Invalid value"},
		{"config key", func(p *Params) { p.Config = map[string]string{"a/b": "x"} }, "Config[a/b]: Invalid value"},
		{"reserved label", func(p *Params) { p.Labels = map[string]string{"app": "other"} }, "Labels[app]: Forbidden"},
		{"label value", func(p *Params) { p.Labels = map[string]string{"team": "a b"} }, "Labels[team]: Invalid value"},
		{"label key", func(p *Params) { p.Labels = map[string]string{"-x": "a"} }, "Labels[-x]: Invalid value"},
		{"annotation key", func(p *Params) { p.Annotations = map[string]string{"a b": "x"} }, "Annotations[a b]: Invalid value"},
		{"cpu request", func(p *Params) { p.Resources.Requests.CPU = "lots" }, "Resources.Requests.CPU: Invalid value"},
		{"memory limit", func(p *Params) { p.Resources.Limits.Memory = "1 GB" }, "Resources.Limits.Memory: Invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validParams()
			tt.mutate(&p)
			err := p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidParams) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want ErrInvalidParams naming %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	err := Params{Replicas: -1, Ports: []Port{{Port: 0}}}.Validate()
	for _, field := range []string{"App:", "Image:", "Replicas:", "Ports[0].Port:"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
}

func TestRenderValidatesParams(t *testing.T) {
	tmpl, err := Builtin("web-service")
	if err != nil {
		t.Fatal(err)
	}
	p := validParams()
	p.Image = ""
	if _, err := tmpl.Render(p); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("Render with no image = %v, want ErrInvalidParams", err)
	}
}

func TestLabels(t *testing.T) {
	p := validParams()
	p.Labels = map[string]string{"team": "a"}
	got := p.ObjectLabels()
	for k, v := range p.SelectorLabels() {
		if got[k] != v {
			t.Errorf("ObjectLabels()[%s] = %q, want selector label %q", k, got[k], v)
		}
	}
	if got["team"] != "a" || got["app"] != "web" || got["app.kubernetes.io/managed-by"] != "shipbot" {
		t.Errorf("ObjectLabels() = %v", got)
	}
	if len(p.Labels) != 1 {
		t.Errorf("ObjectLabels modified Params.Labels: %v", p.Labels)
	}
}
