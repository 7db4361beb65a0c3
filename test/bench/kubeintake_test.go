package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/kubestore"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

// Targets for intake into the cluster's inbox (docs/BENCHMARKS.md): above
// GitLab.com's peak delivery rate of about 217 a second, with some room.
const (
	targetKubeAcksPerSec = 300.0
	targetKubeP99ms      = 100.0
)

// BenchmarkIngestKubernetes measures durable acks at POST /webhooks/gitlab
// when deliveries are stored as Delivery objects (webhook.inbox), against
// the local control plane: every ack is an apiserver create committed to
// etcd. The control plane starts inside the benchmark, so that make test,
// which runs no benchmarks, does not start one for this package.
func BenchmarkIngestKubernetes(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Shipbot: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		b.Fatal(err)
	}
	body := fixtures.PipelineSuccess(b, fixtures.Build{
		ProjectID: 42, Project: "shop/web", Ref: "main", SHA: strings.Repeat("c0ffee", 6) + "c0ff", PipelineID: 4242, Username: "dev",
	})
	load := loadAverage()
	top := levels[len(levels)-1]
	var raw, got result
	// The ceiling: the same creates straight from 64 goroutines, no HTTP.
	b.Run(fmt.Sprintf("apiserver-create/senders=%d", top.senders), func(b *testing.B) {
		raw = measure(b, "creates/s", func(ctx context.Context, _ string) (result, error) {
			inbox, err := kubestore.NewInbox(c.RESTConfig(), c.NewNamespace(b))
			if err != nil {
				return result{}, err
			}
			return top.run(ctx, func(ctx context.Context, key string) error {
				_, dup, err := inbox.Accept(ctx, store.Delivery{Key: key, Event: "Pipeline Hook", Body: body, ReceivedAt: time.Now()})
				if err == nil && dup {
					err = fmt.Errorf("delivery %s: stored before", key)
				}
				return err
			})
		})
	})
	b.Run(fmt.Sprintf("http/senders=%d", top.senders), func(b *testing.B) {
		got = measure(b, "acks/s", func(ctx context.Context, _ string) (result, error) {
			ns := c.NewNamespace(b)
			inbox, err := kubestore.NewInbox(c.RESTConfig(), ns)
			if err != nil {
				return result{}, err
			}
			return ingestKube(ctx, inbox, dyn, ns, top, body)
		})
	})
	if got.n > 0 {
		fmt.Printf("\nintake into Delivery objects: pipeline body %d bytes, %d senders, load average before %s\n", len(body), top.senders, load)
		fmt.Printf("%d acks, %.0f acks/s (target >= %.0f: %s), p50 %.2f ms, p99 %.2f ms (target <= %.0f ms: %s)\n",
			got.n, got.rate(), targetKubeAcksPerSec, verdict(got.rate() >= targetKubeAcksPerSec),
			got.quantile(0.50), got.quantile(0.99), targetKubeP99ms, verdict(got.quantile(0.99) <= targetKubeP99ms))
	}
	if raw.n > 0 {
		fmt.Printf("the same creates without HTTP: %.0f/s, p50 %.2f ms, p99 %.2f ms\n", raw.rate(), raw.quantile(0.50), raw.quantile(0.99))
	}
}

// ingestKube drives one level against an intake on the cluster's inbox in
// namespace ns, then checks that ns holds exactly the deliveries sent.
func ingestKube(ctx context.Context, inbox *kubestore.Inbox, dyn dynamic.Interface, ns string, l level, body []byte) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, levelTimeout)
	defer cancel()
	in, err := serveIntake(ctx, inbox, kubestore.MaxBody)
	if err != nil {
		return result{}, err
	}
	s := newSender(in.url, body, l.senders)
	res, err := l.run(ctx, s.post)
	s.client.CloseIdleConnections()
	if err := errors.Join(err, in.close(ctx)); err != nil {
		return result{}, err
	}
	list, err := dyn.Resource(kubestore.Deliveries).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return result{}, err
	}
	if len(list.Items) != l.total() {
		return result{}, fmt.Errorf("namespace %s holds %d Delivery objects, %d were acknowledged", ns, len(list.Items), l.total())
	}
	return res, nil
}
