package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// RolloutError says why a Deployment did not become available, in the words
// a person would look for: pod-level reasons, not "timeout".
type RolloutError struct {
	Namespace, Name string
	Cause           string   // "timed out after 5m0s" or "progress deadline exceeded"
	Reasons         []string // e.g. "pod web-7d9-x2k: ImagePullBackOff: Back-off pulling image ..."
}

// Error joins the cause and the reasons on one line.
func (e *RolloutError) Error() string {
	msg := fmt.Sprintf("deployment %s/%s not available: %s", e.Namespace, e.Name, e.Cause)
	if len(e.Reasons) > 0 {
		msg += ": " + strings.Join(e.Reasons, "; ")
	}
	return msg
}

// pollEvery is how often rollout status is read. A watch would save requests,
// but a poll survives apiserver restarts and costs little at this rate.
const pollEvery = 200 * time.Millisecond

// WaitRollout waits until the Deployment's newest revision is fully rolled out
// and available, as `kubectl rollout status` judges it.
func (c *Client) WaitRollout(ctx context.Context, ns, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last *appsv1.Deployment
	var lastErr error
	for {
		// A failed read is retried until the deadline: the apiserver may be
		// restarting, and near the deadline client-go refuses to wait at all.
		d, err := c.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last, lastErr = d, nil
			done, failed := rolloutDone(d)
			if done {
				return nil
			}
			if failed != "" {
				return c.rolloutError(context.WithoutCancel(ctx), d, failed)
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				return ctx.Err()
			}
			if last == nil {
				return fmt.Errorf("cluster %s: read deployment %s/%s: %w", c.Name, ns, name, errors.Join(lastErr, ctx.Err()))
			}
			// Diagnose on a fresh context: the rollout's own has expired.
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer dcancel()
			return c.rolloutError(dctx, last, "timed out after "+timeout.String())
		case <-tick.C:
		}
	}
}

// rolloutDone reports whether d is rolled out, or why it has failed for good.
func rolloutDone(d *appsv1.Deployment) (done bool, failed string) {
	if d.Generation > d.Status.ObservedGeneration {
		return false, ""
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, "progress deadline exceeded"
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	if s.UpdatedReplicas < want || s.Replicas > s.UpdatedReplicas || s.AvailableReplicas < s.UpdatedReplicas {
		return false, ""
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue, ""
		}
	}
	return want == 0, ""
}

func (c *Client) rolloutError(ctx context.Context, d *appsv1.Deployment, cause string) error {
	return &RolloutError{Namespace: d.Namespace, Name: d.Name, Cause: cause, Reasons: c.Diagnose(ctx, d)}
}

// benign waiting reasons say a container is on its way, not stuck.
var benign = map[string]bool{"ContainerCreating": true, "PodInitializing": true, "": true}

// maxReasons bounds a diagnosis so that a 50-replica failure stays readable.
const maxReasons = 5

// Diagnose explains why a Deployment's pods are not available, from their
// status, their Warning events and the Deployment's own failure conditions.
func (c *Client) Diagnose(ctx context.Context, d *appsv1.Deployment) []string {
	var out []string
	seen := map[string]bool{}
	add := func(pod, reason, msg string) {
		key := reason + "\x00" + msg
		if seen[key] || len(out) >= maxReasons {
			return
		}
		seen[key] = true
		line := reason
		if msg != "" {
			line += ": " + msg
		}
		if pod != "" {
			line = "pod " + pod + ": " + line
		}
		out = append(out, line)
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue {
			add("", cond.Reason, cond.Message)
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return append(out, "cannot read pods: "+err.Error())
	}
	pods, err := c.Kube.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return append(out, "cannot read pods: "+err.Error())
	}
	items := pods.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	for i := range items {
		p := &items[i]
		if podReady(p) {
			continue
		}
		for _, r := range podReasons(p) {
			add(p.Name, r[0], r[1])
		}
		for _, r := range c.warnings(ctx, p) {
			add(p.Name, r[0], r[1])
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podReasons reads [reason, message] pairs from a pod's status.
func podReasons(p *corev1.Pod) [][2]string {
	var out [][2]string
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			out = append(out, [2]string{"FailedScheduling", c.Message})
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range statuses {
		if w := s.State.Waiting; w != nil && !benign[w.Reason] {
			msg := w.Message
			if t := s.LastTerminationState.Terminated; t != nil && w.Reason == "CrashLoopBackOff" {
				msg = fmt.Sprintf("container %s exited with code %d (%s), restarted %d times", s.Name, t.ExitCode, t.Reason, s.RestartCount)
			}
			out = append(out, [2]string{w.Reason, msg})
		}
	}
	return out
}

// warnings reads the newest Warning event of each reason for a pod.
func (c *Client) warnings(ctx context.Context, p *corev1.Pod) [][2]string {
	sel := fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.name", p.Name),
		fields.OneTermEqualSelector("involvedObject.kind", "Pod"),
		fields.OneTermEqualSelector("type", corev1.EventTypeWarning),
	)
	evs, err := c.Kube.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.String()})
	if err != nil {
		return nil
	}
	items := evs.Items
	sort.Slice(items, func(i, j int) bool { return eventTime(items[i]).After(eventTime(items[j])) })
	var out [][2]string
	seen := map[string]bool{}
	for _, e := range items {
		if !seen[e.Reason] {
			seen[e.Reason] = true
			out = append(out, [2]string{e.Reason, e.Message})
		}
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
