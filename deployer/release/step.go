package release

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/kube"
)

// stepper runs one Step of one release.
type stepper struct {
	e *Stepper
	r *Release
	d Driver
	w *workloads // for diagnosing pods
	// retried is set once progress has run the stage again at once
	// because Ready asked for it.
	retried bool
	// deferred is the Deployment that Finalize or Rollback leaves running
	// through the scale-down delay (planDrain).
	deferred string
}

// maxHops bounds the phase changes in one Step; a release has a handful.
const maxHops = 64

// run acts on intents, then runs phase after phase until one must wait.
// Each phase handler returns a Result to wait with, or nil once it has moved
// the release to another phase.
func (s *stepper) run(ctx context.Context) (Result, error) {
	if err := s.applyIntents(ctx); err != nil {
		return s.e.result(s.r, 0), err
	}
	if _, err := s.followGroup(ctx); err != nil {
		return s.e.result(s.r, 0), err
	}
	if s.r.Phase == Paused || (s.r.Phase.Terminal() && !s.r.draining()) {
		return s.e.result(s.r, 0), nil // nothing to do on the cluster
	}
	for range maxHops {
		wait, err := s.phase(ctx)
		if err != nil && permanent(err) && ctx.Err() == nil {
			err = s.giveUp(ctx, err)
		}
		if err != nil {
			return s.e.result(s.r, 0), err
		}
		if wait != nil {
			return *wait, nil
		}
	}
	return s.e.result(s.r, 0), fmt.Errorf("release %s: %d phase changes in one step", s.r.ID, maxHops)
}

// connect picks the release's cluster and driver; intents need neither.
func (s *stepper) connect(ctx context.Context) error {
	c, err := s.e.clusters.Cluster(ctx, s.r.Cluster)
	if err != nil {
		return err
	}
	s.w = &workloads{kube: c.Kube, view: s.e.view(s.r.Cluster, c, s.r.Namespace), render: s.e.render, spare: map[string]bool{}}
	s.d, err = newDriver(ctx, s.r, c, s.w)
	return err
}

func (s *stepper) phase(ctx context.Context) (*Result, error) {
	if s.r.Phase == Pending {
		// Starting reads only the store, so a release queued or held in
		// Pending needs no cluster yet.
		return s.start(ctx)
	}
	if s.d == nil {
		if err := s.connect(ctx); err != nil {
			return nil, err
		}
	}
	switch s.r.Phase {
	case Progressing:
		return s.progress(ctx)
	case Verifying:
		return s.verify(ctx)
	case RollingBack:
		return s.rollback(ctx)
	case Succeeded, RolledBack:
		return s.drain(ctx)
	}
	return s.wait(0), nil // Paused waits for an intent; the rest have ended
}

func (s *stepper) wait(after time.Duration) *Result {
	res := s.e.result(s.r, after)
	return &res
}

// waitPods waits a poll for the app's Deployments to move, or less: until
// the Scheduler sees one of them change.
func (s *stepper) waitPods() *Result {
	res := s.wait(s.e.poll)
	r := s.r
	res.Waits = &Waits{Cluster: r.Cluster, Namespace: r.Namespace, App: r.App, Workload: r.workloadName()}
	return res
}

// act runs one action on the cluster and persists the release after it.
func (s *stepper) act(ctx context.Context, name string, fn func(context.Context, *Release) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fn(ctx, s.r); err != nil {
		return fmt.Errorf("release %s: %s: %w", s.r.ID, name, err)
	}
	return s.save(ctx, name)
}

// save persists the release after an action. A cancelled step persists
// nothing more: like a crash, it leaves the store at the last action.
func (s *stepper) save(ctx context.Context, action string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	announced := len(s.r.announce) > 0
	if err := s.e.save(s.r); err != nil {
		return fmt.Errorf("release %s: persist after %s: %w", s.r.ID, action, err)
	}
	if s.e.afterAction != nil {
		s.e.afterAction(s.r, action)
	}
	if announced {
		// Told now, as before the outbox; what fails here the outbox's
		// dispatcher tries again.
		if _, err := s.e.Deliver(ctx); err != nil && ctx.Err() == nil {
			s.e.log.Warn("deliver release events", "release", s.r.ID, "err", err)
		}
	}
	return nil
}

// transition moves to another phase, reports it and persists.
func (s *stepper) transition(ctx context.Context, p Phase, why string, reason Reason, msg string) error {
	if err := s.r.Transition(p, why); err != nil {
		return err
	}
	if reason != "" {
		s.e.emit(ctx, s.r, reason, msg)
	}
	return s.save(ctx, strings.ToLower(string(p)))
}

// applyIntents acts on the intents recorded since the last step, in order.
// One that no longer fits (say, a second continue) is refused and reported.
func (s *stepper) applyIntents(ctx context.Context) error {
	for _, in := range s.r.pendingIntents() {
		err := s.r.apply(in)
		in.Done = s.e.clock.Now()
		switch {
		case err != nil:
			in.Outcome = err.Error()
			s.e.emit(ctx, s.r, ReasonIntentRejected, fmt.Sprintf("%s by %s: %v", in, in.Actor, err))
		case in.Kind == IntentPause:
			in.Outcome = OutcomeApplied
			s.e.emit(ctx, s.r, ReasonPaused, fmt.Sprintf("paused by %s via %s", in.Actor, in.Surface))
		case in.Kind == IntentRollback:
			in.Outcome = OutcomeApplied
			s.e.emit(ctx, s.r, ReasonRollingBack, s.r.Reason)
		case in.Kind == IntentAbort:
			in.Outcome = OutcomeApplied
			s.e.emit(ctx, s.r, ReasonAborted, s.r.Reason)
		case in.Kind == IntentOverrideFreeze:
			in.Outcome = OutcomeApplied
			s.emitOverride(ctx, in)
		default:
			in.Outcome = OutcomeApplied
		}
		if err := s.save(ctx, "intent "+string(in.Kind)); err != nil {
			return err
		}
	}
	return nil
}

// progress runs stage Stage: ensure workloads and routing, run the
// before-gates, set the target and wait for it to be in effect.
func (s *stepper) progress(ctx context.Context) (*Result, error) {
	r := s.r
	if r.runningCheck() == nil && !r.passed(Pods) {
		// Not started yet: the stage starts with the whole group.
		if wait, err := s.groupBarrier(ctx); wait != nil || err != nil {
			return wait, err
		}
	}
	if r.Stage >= len(r.Stages) {
		return s.finalize(ctx)
	}
	if r.Stage > 0 && !r.begun() {
		// A running release stops at its next stage while a lock or a
		// freeze holds its environment.
		if wait, err := s.held(ctx); wait != nil || err != nil {
			return wait, err
		}
	}
	if err := s.act(ctx, "ensure", s.d.Ensure); err != nil {
		return nil, err
	}
	if wait, err := s.gates(ctx, Before); wait != nil || err != nil || r.Phase != Progressing {
		return wait, err
	}
	target := r.Target()
	if r.runningCheck() == nil && !r.passed(Pods) {
		r.check(Pods, "pods")
		s.e.emit(ctx, r, ReasonStageStarted, fmt.Sprintf("stage %d/%d: moving to %s", r.Stage+1, len(r.Stages), r.Stages[r.Stage].Label()))
	}
	if err := s.scaleFor(ctx, target); err != nil {
		return nil, err
	}
	err := s.act(ctx, "set-target", func(ctx context.Context, r *Release) error { return s.d.SetTarget(ctx, r, target) })
	if err != nil {
		return nil, err
	}
	rd, err := s.d.Ready(ctx, r, target)
	if err != nil {
		return nil, err
	}
	if !rd.Done && rd.Retry && !s.retried {
		// The pods became available after SetTarget looked: move the
		// weight now rather than a poll later.
		s.retried = true
		return nil, nil
	}
	if !rd.Done {
		return s.notReady(ctx, rd)
	}
	c := r.check(Pods, "pods")
	label := r.Stages[r.Stage].Label()
	c.Status, c.Message = CheckPassed, label+" in effect"
	r.Percent = target
	return nil, s.transition(ctx, Verifying, fmt.Sprintf("stage %d/%d at %s", r.Stage+1, len(r.Stages), label), "", "")
}

// begun reports whether the current stage has started: it has a check.
func (r *Release) begun() bool {
	return slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Stage == r.Stage })
}

// passed reports whether the current stage's check of a kind has passed.
func (r *Release) passed(when When) bool {
	for _, c := range r.Checks {
		if c.Stage == r.Stage && c.When == when && c.Status == CheckPassed {
			return true
		}
	}
	return false
}

// notReady waits for the stage's pods, or fails it once the progress
// deadline has passed or the Deployment says it cannot progress.
func (s *stepper) notReady(ctx context.Context, rd Readiness) (*Result, error) {
	r := s.r
	c := r.check(Pods, "pods")
	c.Runs++
	c.Message = rd.Waiting
	failure := rd.Failure
	if failure == "" && s.e.clock.Now().Sub(c.Started) >= r.ProgressDeadline {
		failure = fmt.Sprintf("not available within the progress deadline (%s): %s", r.ProgressDeadline, rd.Waiting)
	}
	if failure == "" {
		return s.waitPods(), s.save(ctx, "wait for pods")
	}
	if rd.Stuck != "" {
		if reasons := s.w.diagnose(ctx, r, rd.Stuck); len(reasons) > 0 {
			failure += ": " + strings.Join(reasons, "; ")
		}
	}
	c.Status, c.Message = CheckFailed, failure
	s.e.emit(ctx, r, ReasonNotReady, failure)
	return nil, s.fail(ctx, FailRollback, failure)
}

// verify runs the after-gates, then moves to the next stage, or pauses
// there when the stage asks for approval.
func (s *stepper) verify(ctx context.Context) (*Result, error) {
	r := s.r
	if wait, err := s.gates(ctx, After); wait != nil || err != nil || r.Phase != Verifying {
		return wait, err
	}
	done := r.Stages[r.Stage]
	s.e.emit(ctx, r, ReasonStageCompleted, fmt.Sprintf("stage %d/%d at %s", r.Stage+1, len(r.Stages), done.Label()))
	r.Stage++
	if done.Continue == Manual {
		msg := fmt.Sprintf("stage %d/%d done at %s; waiting for approval", r.Stage, len(r.Stages), done.Label())
		return nil, s.transition(ctx, Paused, msg, ReasonPaused, msg)
	}
	return nil, s.transition(ctx, Progressing, fmt.Sprintf("stage %d/%d done", r.Stage, len(r.Stages)), "", "")
}

// gates runs the current stage's gates of one kind, in order. It returns a
// Result while one is pending, and nil once all have passed or one has
// failed (and changed the phase).
func (s *stepper) gates(ctx context.Context, when When) (*Result, error) {
	r := s.r
	gates := r.Stages[r.Stage].After
	if when == Before {
		gates = r.Stages[r.Stage].Before
	}
	for _, g := range gates {
		c := r.check(when, g.Name)
		if c.Status == CheckPassed {
			continue
		}
		now := s.e.clock.Now()
		if c.Status == CheckRunning && now.Before(c.Next) {
			return s.wait(c.Next.Sub(now)), nil
		}
		s.e.evaluate(ctx, r, g, c)
		switch c.Status {
		case CheckRunning:
			if c.Runs == 1 {
				s.e.emit(ctx, r, ReasonWaitingForGate, fmt.Sprintf("%s gate %s: %s", when, g.Name, c.Message))
			}
			return s.wait(c.Next.Sub(now)), s.save(ctx, "gate "+g.Name)
		case CheckFailed:
			s.e.emit(ctx, r, ReasonGateFailed, fmt.Sprintf("%s gate %s: %s", when, g.Name, c.Message))
			return nil, s.fail(ctx, g.OnFailure, fmt.Sprintf("gate %s failed: %s", g.Name, c.Message))
		}
		s.e.emit(ctx, r, ReasonGatePassed, fmt.Sprintf("%s gate %s: %s", when, g.Name, c.Message))
		if err := s.save(ctx, "gate "+g.Name); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// fail pauses or rolls back after a failed check. A first release has
// nothing to roll back to, so it fails instead.
func (s *stepper) fail(ctx context.Context, action FailureAction, why string) error {
	s.r.Reason = why
	switch {
	case action == FailPause:
		return s.transition(ctx, Paused, why, ReasonPaused, why)
	case s.r.From.IsZero():
		return s.transition(ctx, Failed, why, ReasonFailed, why)
	}
	return s.transition(ctx, RollingBack, why, ReasonRollingBack, why)
}

// giveUp handles an error that retrying cannot fix, such as an object the
// API server refuses: roll back, or fail if rolling back is what failed.
func (s *stepper) giveUp(ctx context.Context, err error) error {
	if s.r.Phase == RollingBack || s.r.Phase.Terminal() {
		s.r.Reason = err.Error()
		return s.transition(ctx, Failed, err.Error(), ReasonFailed, err.Error())
	}
	return s.fail(ctx, FailRollback, err.Error())
}

func permanent(err error) bool { return errors.Is(err, ErrInvalid) || errors.Is(err, kube.ErrInvalid) }

// finalize makes To the only version once every stage is done.
func (s *stepper) finalize(ctx context.Context) (*Result, error) {
	if err := s.beforeEnd(ctx, s.r.From); err != nil {
		return nil, err
	}
	var done bool
	err := s.act(ctx, "finalize", func(ctx context.Context, r *Release) (err error) {
		done, err = s.d.Finalize(ctx, r)
		return err
	})
	if err != nil || !done {
		return s.waitPods(), err
	}
	s.r.Percent = 100
	msg := fmt.Sprintf("%s serves 100 %%", s.r.To.Name)
	return nil, s.end(ctx, Succeeded, msg, ReasonSucceeded)
}

// beforeEnd readies Finalize or Rollback, which leave gone: it is spared
// for the scale-down delay if the release defers it, as are the versions
// other ended releases of the target still owe a scale-down (but not this
// release's own, which it runs or leaves now).
func (s *stepper) beforeEnd(ctx context.Context, gone Revision) error {
	drains, err := s.e.Draining(ctx)
	if err != nil {
		return err
	}
	r := s.r
	for _, o := range drains {
		if targetOf(o) == targetOf(*r) && o.Drain.Deployment != versionName(r, r.From) && o.Drain.Deployment != versionName(r, r.To) {
			s.w.spare[o.Drain.Deployment] = true
		}
	}
	return s.planDrain(ctx, gone)
}

// end moves to a terminal phase. With nothing left to scale down, the old
// Deployments beyond the revision history go at once; otherwise after
// the scale-down (drain).
func (s *stepper) end(ctx context.Context, p Phase, msg string, reason Reason) error {
	s.r.Drain = nil
	if s.deferred != "" {
		s.r.Drain = &Drain{Deployment: s.deferred, Due: s.e.clock.Now().Add(s.r.scaleDownDelay())}
		msg += fmt.Sprintf("; %s scales down in %s", s.deferred, s.r.scaleDownDelay())
	}
	if err := s.transition(ctx, p, msg, reason, msg); err != nil {
		return err
	}
	if s.r.Drain == nil {
		s.prune(ctx)
	}
	return nil
}

// rollback returns everything to From; it fails if From's pods do not come
// back within the progress deadline.
func (s *stepper) rollback(ctx context.Context) (*Result, error) {
	if err := s.beforeEnd(ctx, s.r.To); err != nil {
		return nil, err
	}
	var done bool
	err := s.act(ctx, "rollback", func(ctx context.Context, r *Release) (err error) {
		done, err = s.d.Rollback(ctx, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	r := s.r
	c := r.check(Pods, "rollback")
	if !done {
		if s.e.clock.Now().Sub(c.Started) < r.ProgressDeadline {
			return s.waitPods(), nil
		}
		msg := fmt.Sprintf("rollback not done within the progress deadline (%s)", r.ProgressDeadline)
		c.Status, c.Message = CheckFailed, msg
		return nil, s.transition(ctx, Failed, msg, ReasonFailed, msg)
	}
	c.Status = CheckPassed
	r.Percent = 0
	msg := fmt.Sprintf("%s serves 100 %% again", r.From.Name)
	if r.Reason != "" {
		msg += " (" + r.Reason + ")"
	}
	return nil, s.end(ctx, RolledBack, msg, ReasonRolledBack)
}
