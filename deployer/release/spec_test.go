package release

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestSpecValidate(t *testing.T) {
	prom := &PrometheusGate{Address: "http://prom:9090", Query: "up", Op: "<", Threshold: 1}
	tests := []struct {
		name string
		spec Spec
		want []string // one substring per expected error, in order
	}{
		{"canary ok", Spec{Strategy: Canary, Steps: Weights(10, 50, 100), PauseAfter: []int{10}}, nil},
		{"groups ok", Spec{Strategy: Groups, Steps: Weights(50, 100), Replicas: 10, MinAvailable: 9}, nil},
		{"blue-green default step", Spec{Strategy: BlueGreen}, nil},
		{"rolling explicit step", Spec{Strategy: Rolling, Steps: Weights(100)}, nil},
		{"no strategy", Spec{Steps: Weights(100)}, []string{"strategy: Required value"}},
		{"unknown strategy", Spec{Strategy: "shadow"}, []string{`strategy: Unsupported value: "shadow"`}},
		{"canary without steps", Spec{Strategy: Canary}, []string{"steps: Required value"}},
		{"not increasing", Spec{Strategy: Canary, Steps: Weights(10, 10, 100)}, []string{"steps[1]: Invalid value: 10: must be greater than the step before it (10)"}},
		{"decreasing", Spec{Strategy: Canary, Steps: Weights(50, 20, 100)}, []string{"steps[1]: Invalid value: 20: must be greater"}},
		{"out of range", Spec{Strategy: Canary, Steps: Weights(0, 50, 101)}, []string{
			"steps[0]: Invalid value: 0: must be between 1 and 100",
			"steps[2]: Invalid value: 101: must be between 1 and 100",
			"steps[2]: Invalid value: 101: the last step must be 100"}},
		{"not ending at 100", Spec{Strategy: Groups, Steps: Weights(10, 50)}, []string{"steps[1]: Invalid value: 50: the last step must be 100"}},
		{"blue-green with steps", Spec{Strategy: BlueGreen, Steps: Weights(50, 100)}, []string{"steps: Invalid value: [50,100]: blue-green has the single step 100"}},
		{"pause after a missing step", Spec{Strategy: Canary, Steps: Weights(10, 100), PauseAfter: []int{50}}, []string{"pauseAfter[0]: Invalid value: 50"}},
		{"sizes", Spec{Strategy: Groups, Steps: Weights(100), Replicas: 3, MinAvailable: 4, ProgressDeadline: -time.Second}, []string{
			"minAvailable: Invalid value: 4", "progressDeadline: Invalid value"}},
		{"on newer queue", Spec{Strategy: Rolling, OnNewer: OnNewerQueue}, nil},
		{"gateway API canary", Spec{Strategy: Canary, Steps: Weights(10, 100), Router: RouterGatewayAPI, HTTPRoute: "web-public", AnyWeight: true}, nil},
		{"unknown router", Spec{Strategy: Canary, Steps: Weights(100), Router: "linkerd"}, []string{`router: Unsupported value: "linkerd": supported values: "istio", "gatewayAPI"`}},
		{"router without a canary", Spec{Strategy: Groups, Steps: Weights(100), Router: RouterIstio}, []string{"router: Invalid value: \"istio\": only a canary is routed"}},
		{"on newer supersede", Spec{Strategy: Canary, Steps: Weights(100), OnNewer: OnNewerSupersede}, nil},
		{"on newer unknown", Spec{Strategy: Rolling, OnNewer: "cancel"}, []string{`onNewer: Unsupported value: "cancel": supported values: "queue", "supersede"`}},
		{"gate without kind", Spec{Strategy: Canary, Steps: Weights(100), Gates: []GateSpec{{Gate: Gate{Name: "g"}}}}, []string{"gates[0]: Required value: one of http, prometheus or mergeRequestApproval"}},
		{"gate with both kinds", Spec{Strategy: Canary, Steps: Weights(100), Gates: []GateSpec{{Gate: Gate{Name: "g", HTTP: &HTTPGate{URL: "http://x"}, Prometheus: prom}}}}, []string{"gates[0]: Forbidden: a gate is exactly one of"}},
		{"approval gate with no count", Spec{Strategy: Canary, Steps: Weights(100), Gates: []GateSpec{{Gate: Gate{Name: "g", MergeRequestApproval: &MergeRequestApprovalGate{}}}}},
			[]string{"gates[0].mergeRequestApproval.approvals: Invalid value: 0: must be between 1 and 20"}},
		{"gate problems", Spec{Strategy: Canary, Steps: Weights(10, 100), Gates: []GateSpec{
			{Gate: Gate{Name: "a", HTTP: &HTTPGate{URL: "ftp://x?token=secret"}, OnFailure: "ignore"}, When: "during", Steps: []int{20}},
			{Gate: Gate{Name: "a", Prometheus: &PrometheusGate{Address: "http://p", Op: "=~", FailureLimit: -1}}},
		}}, []string{
			"gates[0].http.url: Invalid value: \"<redacted>\"",
			`gates[0].when: Unsupported value: "during"`,
			`gates[0].onFailure: Unsupported value: "ignore"`,
			"gates[0].steps[0]: Invalid value: 20",
			`gates[1].name: Duplicate value: "a"`,
			"gates[1].prometheus.query: Required value",
			`gates[1].prometheus.op: Unsupported value: "=~"`,
			"gates[1].prometheus.failureLimit: Invalid value: -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.spec.Validate()
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
				if strings.Contains(e.Error(), "secret") {
					t.Errorf("error echoes a secret: %v", e)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() =\n  %s\nwant %d errors like\n  %s", strings.Join(got, "\n  "), len(tt.want), strings.Join(tt.want, "\n  "))
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSpecFromYAML(t *testing.T) {
	src := `
strategy: canary
steps: [10, 50, 100]
pauseAfter: [10]
replicas: 4
minAvailable: 3
progressDeadline: 5m
onNewer: supersede
gates:
  - name: smoke
    when: before
    steps: [50]
    http: {url: "https://hooks.example/smoke", timeout: 2m, interval: 5s}
  - name: errors
    onFailure: pause
    prometheus: {address: "http://prom:9090", query: "sum(rate(errors[1m]))", op: "<", threshold: 0.5, interval: 30s, duration: 2m, failureLimit: 2}
`
	var s Spec
	if err := yaml.Unmarshal([]byte(src), &s); err != nil {
		t.Fatal(err)
	}
	if errs := s.Validate(); len(errs) > 0 {
		t.Fatalf("Validate: %v", errs)
	}
	if s.ProgressDeadline != 5*time.Minute || s.Gates[0].HTTP.Timeout != 2*time.Minute || s.Gates[1].Prometheus.Duration != 2*time.Minute {
		t.Errorf("durations not decoded: %+v", s)
	}
	if !s.OnNewer.Supersedes() {
		t.Errorf("onNewer = %q, want supersede", s.OnNewer)
	}
	stages := s.Stages()
	if got := []int{stages[0].Target, stages[1].Target, stages[2].Target}; !slices.Equal(got, []int{10, 50, 100}) {
		t.Errorf("targets %v", got)
	}
	if stages[0].Continue != Manual || stages[1].Continue != Auto {
		t.Errorf("continue modes %s %s", stages[0].Continue, stages[1].Continue)
	}
	if len(stages[1].Before) != 1 || stages[1].Before[0].Name != "smoke" || len(stages[0].Before) != 0 {
		t.Errorf("before gates %+v", stages)
	}
	for i, st := range stages {
		if len(st.After) != 1 || st.After[0].OnFailure != FailPause {
			t.Errorf("stage %d after gates %+v", i, st.After)
		}
	}
}

func TestSpecOnNewerDefaultQueues(t *testing.T) {
	for _, o := range []OnNewer{"", OnNewerQueue} {
		if o.Supersedes() {
			t.Errorf("OnNewer(%q).Supersedes() = true, want a newer tag to queue", o)
		}
	}
}

func TestSpecBadDurationFromYAML(t *testing.T) {
	var s Spec
	err := yaml.Unmarshal([]byte("strategy: rolling\nprogressDeadline: 5 minutes\n"), &s)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Unmarshal = %v, want an error on line 2", err)
	}
}

func TestRoutingStepsFromYAML(t *testing.T) {
	var s Spec
	src := `
strategy: canary
steps: [{match: {headers: {x-canary: "true"}}, pause: true}, {mirror: 20}, 10, 100]
pauseAfter: [10]
`
	if err := yaml.Unmarshal([]byte(src), &s); err != nil {
		t.Fatal(err)
	}
	if errs := s.Validate(); len(errs) > 0 {
		t.Fatalf("Validate: %v", errs)
	}
	got := s.Stages()
	want := []Stage{
		{Target: 0, Match: &Match{Headers: map[string]string{"x-canary": "true"}}, Continue: Manual},
		{Target: 0, Mirror: 20, Continue: Auto},
		{Target: 10, Continue: Manual},
		{Target: 100, Continue: Auto},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stages =\n  %+v\nwant\n  %+v", got, want)
	}
	out, err := yaml.Marshal(s)
	if err != nil || !strings.Contains(string(out), "mirror: 20") || !strings.Contains(string(out), "- 10\n") {
		t.Errorf("Marshal = %s (%v)", out, err)
	}
}

func TestRoutingStepsRefused(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"not a canary", "strategy: groups\nsteps: [{mirror: 20}, 100]", "steps[0]: Invalid value: \"mirror 20 %\": match and mirror steps need a canary"},
		{"mirror out of range", "strategy: canary\nsteps: [{mirror: 120}, 100]", "steps[0].mirror: Invalid value: 120: must be between 1 and 100"},
		{"both kinds", "strategy: canary\nsteps: [{mirror: 5, match: {headers: {a: b}}}, 100]", "a step is either match or mirror"},
		{"no headers", "strategy: canary\nsteps: [{match: {headers: {}}}, 100]", "steps[0].match.headers: Required value"},
		{"routing step last", "strategy: canary\nsteps: [10, {mirror: 20}]", "steps[1]: Invalid value: \"mirror 20 %\": the last step must be 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Spec
			if err := yaml.Unmarshal([]byte(tt.src), &s); err != nil {
				t.Fatal(err)
			}
			errs := s.Validate()
			if len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", errs, tt.want)
			}
		})
	}
	var s Spec
	if err := yaml.Unmarshal([]byte("strategy: canary\nsteps: [ten, 100]"), &s); err == nil || !strings.Contains(err.Error(), `step "ten"`) {
		t.Errorf("a step that is no number: %v", err)
	}
}
