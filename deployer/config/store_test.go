package config

import (
	"testing"
	"time"
)

func TestRetentionDefaultsAndDays(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Store.Retention
	if r.Deliveries.Duration != 7*day || r.Records.Duration != 30*day || r.Notes.Duration != 30*day ||
		r.UsedLinks.Duration != 7*day || r.Interval.Duration != time.Hour {
		t.Errorf("defaults: %+v", r)
	}
	cfg, err = Parse("f.yaml", []byte(base+"store:\n  retention:\n    deliveries: 2d\n    records: 36h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Store.Retention; r.Deliveries.Duration != 2*day || r.Records.Duration != 36*time.Hour {
		t.Errorf("set: %+v, want deliveries 48h, records 36h", r)
	}
}

func TestRetentionErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"not a duration", "store:\n  retention:\n    deliveries: a week",
			[]string{`f.yaml:21:`, `"a week" is not a duration such as 90s, 5m or 7d`}},
		{"bad days", "store:\n  retention:\n    notes: 1.5d",
			[]string{`f.yaml:21:`, `"1.5d" is not a duration`}},
		{"too short", "store:\n  retention:\n    records: 10m\n    interval: 1s",
			[]string{"f.yaml:21: store.retention.records: 10m0s is too short; use at least 1h0m0s",
				"f.yaml:22: store.retention.interval: 1s is too short; use at least 1m0s"}},
		{"negative", "store:\n  retention:\n    deliveries: -1h",
			[]string{"f.yaml:21: store.retention.deliveries: -1h0m0s is too short"}},
		{"used links outlived by their links", "publicURL: https://s.example.com\ndingtalk:\n  webhookURL: https://oapi.dingtalk.com/robot/send\n  linkTTL: 48h\nstore:\n  retention:\n    usedLinks: 1d",
			[]string{"f.yaml:25: store.retention.usedLinks: 24h0m0s is shorter than dingtalk.linkTTL (48h0m0s)"}},
		{"unknown key", "store:\n  retention:\n    keys: 1d",
			[]string{"f.yaml:21:", `"keys"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { failsWith(t, base+c.yaml, c.want) })
	}
}

func TestClusterInbox(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(base+"webhook:\n  inbox:\n    cluster: local\n    namespace: shipbot\n"))
	if err != nil {
		t.Fatal(err)
	}
	if in := cfg.Webhook.Inbox; in == nil || in.Cluster != "local" || in.Namespace != "shipbot" || cfg.Webhook.MaxBodyBytes != MaxClusterInboxBody {
		t.Errorf("webhook %+v, inbox %+v: want the inbox in local/shipbot and bodies up to %d", cfg.Webhook, in, MaxClusterInboxBody)
	}
	failsWith(t, base+"webhook:\n  maxBodyBytes: 1048576\n  inbox:\n    cluster: nowhere\n    namespace: Ship_bot\n", []string{
		`f.yaml:20: webhook.maxBodyBytes: 1048576 is more than the 786432 bytes a Delivery object holds`,
		`f.yaml:22: webhook.inbox.cluster: "nowhere" is not one of clusters[].name`,
		`f.yaml:23: webhook.inbox.namespace: "Ship_bot"`,
	})
}

func TestStoreBackend(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(base))
	if err != nil || cfg.Store.Backend != BackendBbolt {
		t.Fatalf("default backend %q (%v), want bbolt", cfg.Store.Backend, err)
	}
	cfg, err = Parse("f.yaml", []byte(base+"webhook:\n  inbox: {cluster: local, namespace: shipbot}\nstore:\n  backend: kubernetes\n"))
	if err != nil || cfg.Store.Backend != BackendKubernetes {
		t.Fatalf("backend %q (%v), want kubernetes", cfg.Store.Backend, err)
	}
	failsWith(t, base+"store:\n  backend: kubernetes\n", []string{`f.yaml:20: store.backend: kubernetes keeps the store in webhook.inbox's cluster and namespace; set webhook.inbox`})
	failsWith(t, base+"store:\n  backend: etcd\n", []string{`f.yaml:20: store.backend: "etcd" is not one of bbolt, kubernetes`})
}
