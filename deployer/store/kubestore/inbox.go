// Package kubestore keeps shipbot's records as custom resources in one
// namespace of a cluster (deploy/crds), where every replica can reach them.
// So far it holds the inbox: the webhooks that intake replicas acknowledged
// and the engine has not yet taken into its own store.
package kubestore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/shipbot/shipbot/deployer/store"
)

// Deliveries is the resource of the Delivery CRD (deploy/crds/deliveries.yaml).
var Deliveries = schema.GroupVersionResource{Group: "shipbot.io", Version: "v1alpha1", Resource: "deliveries"}

// MaxBody is the largest webhook body a Delivery holds: base64 makes it a
// third larger, and an object must stay well under etcd's 1.5 MiB request
// limit. intake.maxBodyBytes may not be larger with this inbox.
const MaxBody = 768 << 10

// LabelEvent marks a Delivery with its X-Gitlab-Event, made a label value.
const LabelEvent = "shipbot.io/event"

// delivery is a Delivery object.
type delivery struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              deliverySpec `json:"spec"`
}

type deliverySpec struct {
	Key        string    `json:"key"`
	Event      string    `json:"event"`
	ReceivedAt time.Time `json:"receivedAt"`
	Body       []byte    `json:"body"`
}

// Inbox stores deliveries as Delivery objects in one namespace.
type Inbox struct {
	client dynamic.ResourceInterface
	ns     string
}

// NewInbox returns the inbox in namespace ns of the cluster rc reaches.
// Its client has no client-side rate limit: intake must keep up with
// GitLab's bursts (GitLab.com peaks at about 217 deliveries a second).
func NewInbox(rc *rest.Config, ns string) (*Inbox, error) {
	dyn, err := unthrottled(rc)
	if err != nil {
		return nil, fmt.Errorf("inbox in namespace %s: %w", ns, err)
	}
	return &Inbox{client: dyn.Resource(Deliveries).Namespace(ns), ns: ns}, nil
}

// ObjectName is the name of the Delivery that stores the delivery with
// key: a hash, because a key may be any string and a name may not.
func ObjectName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "d-" + hex.EncodeToString(sum[:20])
}

// Accept stores d unless a delivery with its key is stored already, in
// which case it returns that one and dup=true; replicas that receive the
// same delivery race on one name, and the apiserver lets one win. It
// returns once the apiserver has committed the object. d.Seq is not kept:
// deliveries are ordered by ReceivedAt.
func (in *Inbox) Accept(ctx context.Context, d store.Delivery) (store.Delivery, bool, error) {
	if len(d.Body) > MaxBody {
		return store.Delivery{}, false, fmt.Errorf("delivery %s: body of %d bytes is more than the %d a Delivery object holds", d.Key, len(d.Body), MaxBody)
	}
	obj := delivery{
		TypeMeta:   metav1.TypeMeta{APIVersion: Deliveries.GroupVersion().String(), Kind: "Delivery"},
		ObjectMeta: metav1.ObjectMeta{Name: ObjectName(d.Key), Namespace: in.ns, Labels: map[string]string{LabelEvent: labelValue(d.Event)}},
		Spec:       deliverySpec{Key: d.Key, Event: d.Event, ReceivedAt: d.ReceivedAt.UTC(), Body: d.Body},
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&obj)
	if err != nil {
		return store.Delivery{}, false, fmt.Errorf("delivery %s: %w", d.Key, err)
	}
	// The one stored before may be removed (relayed) between the create
	// that finds it and the read of it; then the create is tried again.
	for range 3 {
		_, err = in.client.Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
		switch {
		case err == nil:
			d.Seq = 0
			return d, false, nil
		case !apierrors.IsAlreadyExists(err):
			return store.Delivery{}, false, fmt.Errorf("store delivery %s in namespace %s: %w", d.Key, in.ns, unavailable(err))
		}
		earlier, err := in.get(ctx, obj.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return store.Delivery{}, false, fmt.Errorf("read delivery %s stored before: %w", d.Key, unavailable(err))
		}
		if earlier.Key != d.Key {
			return store.Delivery{}, false, fmt.Errorf("delivery %s: object %s holds delivery %q", d.Key, obj.Name, earlier.Key)
		}
		earlier.Body = nil // as the bbolt inbox returns a duplicate: its key, event and time
		return earlier, true, nil
	}
	return store.Delivery{}, false, fmt.Errorf("store delivery %s in namespace %s: it was removed and stored again three times in a row", d.Key, in.ns)
}

func (in *Inbox) get(ctx context.Context, name string) (store.Delivery, error) {
	u, err := in.client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return store.Delivery{}, err
	}
	return decode(u)
}

// unavailable marks err as store.ErrUnavailable unless the apiserver
// answered that the request itself is wrong (a 4xx other than 429): a
// refused connection, a timeout or a 5xx may pass if tried again.
func unavailable(err error) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		if code >= 400 && code < 500 && code != 429 {
			return err
		}
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// Pending returns up to limit deliveries, in the order they were received.
func (in *Inbox) Pending(ctx context.Context, limit int) ([]store.Delivery, error) {
	out, _, err := in.pending(ctx, limit)
	return out, err
}

// pending is Pending, and the resourceVersion of the list it read.
func (in *Inbox) pending(ctx context.Context, limit int) ([]store.Delivery, string, error) {
	list, err := in.client.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries in namespace %s: %w", in.ns, err)
	}
	type item struct {
		d       store.Delivery
		created time.Time
		name    string
	}
	items := make([]item, 0, len(list.Items))
	var errs []error
	for i := range list.Items {
		d, err := decode(&list.Items[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, item{d, list.Items[i].GetCreationTimestamp().Time, list.Items[i].GetName()})
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(a.d.ReceivedAt.Compare(b.d.ReceivedAt), a.created.Compare(b.created), cmp.Compare(a.name, b.name))
	})
	out := make([]store.Delivery, 0, min(limit, len(items)))
	for _, it := range items[:min(limit, len(items))] {
		out = append(out, it.d)
	}
	return out, list.GetResourceVersion(), errors.Join(errs...)
}

// Remove deletes the delivery with key; one already gone is no error, so
// that a relay that crashed after taking it may remove it again.
func (in *Inbox) Remove(ctx context.Context, key string) error {
	err := in.client.Delete(ctx, ObjectName(key), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove delivery %s from namespace %s: %w", key, in.ns, err)
	}
	return nil
}

func decode(u *unstructured.Unstructured) (store.Delivery, error) {
	var obj delivery
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
		return store.Delivery{}, fmt.Errorf("delivery object %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	if obj.Name != ObjectName(obj.Spec.Key) {
		return store.Delivery{}, fmt.Errorf("delivery object %s/%s: its name is not that of its key %q", obj.Namespace, obj.Name, obj.Spec.Key)
	}
	return store.Delivery{Key: obj.Spec.Key, Event: obj.Spec.Event, ReceivedAt: obj.Spec.ReceivedAt, Body: obj.Spec.Body}, nil
}

// labelValue makes an event name such as "Pipeline Hook" a label value.
func labelValue(event string) string {
	b := []byte(event)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return strings.Trim(string(b[:min(len(b), 63)]), "_-.")
}

// Ping reads the inbox, to tell whether deliveries can be stored.
func (in *Inbox) Ping(ctx context.Context) error {
	_, err := in.client.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return fmt.Errorf("list deliveries in namespace %s: %w", in.ns, err)
	}
	return nil
}
