package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// ReasonQueued says a release waits for others to end before it starts.
const ReasonQueued Reason = "Queued"

// QueuePoll is how often a queued release looks at what it waits for, in
// case no one wakes it when that ends.
const QueuePoll = 30 * time.Second

// start begins a Pending release once the releases it waits for have
// ended, reading which revision it moves away from at that moment.
func (s *stepper) start(ctx context.Context) (*Result, error) {
	r := s.r
	for _, id := range r.After {
		other, err := s.e.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !other.Phase.Terminal() {
			return s.queued(ctx, fmt.Sprintf("waiting for release %s (%s %s in %s) to end", other.ID, other.App, other.To.Name, other.Environment))
		}
	}
	if r.Requires != "" {
		other, err := s.e.Get(ctx, r.Requires)
		if err != nil {
			return nil, err
		}
		switch {
		case !other.Phase.Terminal():
			return s.queued(ctx, fmt.Sprintf("waiting for release %s to succeed in %s first", other.ID, other.Environment))
		case other.Phase != Succeeded:
			r.Reason = fmt.Sprintf("release %s in %s ended %s", other.ID, other.Environment, other.Phase)
			return nil, s.transition(ctx, Aborted, r.Reason, ReasonAborted, r.Reason)
		}
	}
	if wait, err := s.held(ctx); wait != nil || err != nil {
		return wait, err
	}
	if r.ResolveFrom {
		if err := s.resolveFrom(ctx); err != nil || r.Phase != Pending {
			return nil, err
		}
	}
	if s.d == nil {
		if err := s.connect(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.e.ensureNamespace(ctx, s.w.kube, r.Namespace); err != nil {
		return nil, err
	}
	return nil, s.transition(ctx, Progressing, "started", "", "")
}

// queued waits, saying why once.
func (s *stepper) queued(ctx context.Context, why string) (*Result, error) {
	if last := s.r.lastEvent(); !strings.HasSuffix(last, why) {
		s.e.emit(ctx, s.r, ReasonQueued, why)
		if err := s.save(ctx, "queued"); err != nil {
			return nil, err
		}
	}
	return s.wait(QueuePoll), nil
}

func (r *Release) lastEvent() string {
	for i := len(r.History) - 1; i >= 0; i-- {
		if r.History[i].Kind == EntryEvent {
			return r.History[i].Message
		}
	}
	return ""
}

// resolveFrom sets From to what the target serves now. A release of the
// revision already served ends at once.
func (s *stepper) resolveFrom(ctx context.Context) error {
	r := s.r
	from, err := s.e.Serving(ctx, r.App, r.Environment, r.Cluster, r.ID)
	if err != nil {
		return err
	}
	r.From, r.ResolveFrom = from, false
	if from.Name == r.To.Name {
		r.Reason = fmt.Sprintf("%s already serves %s on %s", r.To.Name, r.Environment, r.Cluster)
		return s.transition(ctx, Aborted, r.Reason, ReasonAborted, r.Reason)
	}
	if from.IsZero() && len(r.Stages) > 1 {
		// Nothing to shift traffic away from: straight to 100 %.
		r.Stages = r.Stages[len(r.Stages)-1:]
	}
	if err := r.Validate(); err != nil {
		return err
	}
	return s.save(ctx, "resolve from")
}

// Serving is the revision that the last ended release of app in env on
// cluster left serving, ignoring release except (ids sort by creation) and
// releases that ended before they acted. It is zero when there was none.
func (e *Stepper) Serving(ctx context.Context, app, env, cluster, except string) (Revision, error) {
	var last *Release
	err := e.store.Releases(func(id string, raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if id == except {
			return nil
		}
		r, err := e.decode(raw)
		if err != nil {
			return err
		}
		if r.App == app && r.Environment == env && r.Cluster == cluster && r.Phase.Terminal() && r.acted() {
			last = &r
		}
		return nil
	})
	if err != nil || last == nil {
		return Revision{}, err
	}
	return last.Left(), nil
}

// Left is the revision an ended release left serving: To once it
// succeeded or was aborted at 100 %, otherwise From.
func (r Release) Left() Revision {
	if r.Phase == Succeeded || (r.Phase == Aborted && r.Percent == 100) {
		return r.To
	}
	return r.From
}

// acted reports whether the release got as far as knowing what it moves
// from. One aborted while still queued never did: its From is empty, and
// taking that as "nothing serves" would let the next release skip its
// stages and leave the serving version running beside it.
func (r Release) acted() bool { return !r.ResolveFrom }

func (r *Release) queued() bool { return len(r.After) > 0 || r.Requires != "" || r.ResolveFrom }

// Prepare fills a new release's defaults, starts its history and validates
// it; the release is Pending and has no id yet.
func Prepare(r Release, now time.Time) (Release, error) {
	r.setDefaults()
	r.Phase, r.Stage, r.Percent, r.Reason = Pending, 0, 0, ""
	r.Intents, r.Checks = nil, nil
	r.Created, r.Updated = now, now
	from := revName(r.From)
	if r.ResolveFrom {
		from = "what is serving when it starts"
	}
	r.History = []Entry{{At: now, Actor: EngineActor, Kind: EntryEvent, Phase: Pending,
		Message: fmt.Sprintf("created: %s %s → %s", r.Strategy, from, r.To.Name)}}
	if err := r.Validate(); err != nil {
		return Release{}, err
	}
	return r, nil
}

// Enqueue stores a prepared release inside tx, behind every active release
// of the same target. With Supersede it first asks those to stop: a started
// one rolls back, one that has not started is aborted. It returns the stored
// release and the ids of the releases it asked to stop.
func Enqueue(tx *store.Tx, r Release, onNewer OnNewer, now time.Time) (Release, []string, error) {
	var ahead []Release
	err := tx.Releases(func(_ string, raw []byte) error {
		var o Release
		if err := json.Unmarshal(raw, &o); err != nil {
			return fmt.Errorf("decode release: %w", err)
		}
		if !o.Phase.Terminal() && o.App == r.App && o.Environment == r.Environment && o.Cluster == r.Cluster {
			ahead = append(ahead, o)
		}
		return nil
	})
	if err != nil {
		return Release{}, nil, err
	}
	var stopped []string
	for _, o := range ahead {
		r.After = append(r.After, o.ID)
		if !onNewer.Supersedes() {
			continue
		}
		in := Intent{Kind: IntentRollback, Actor: EngineActor, Surface: SurfaceShipbot, At: now,
			Comment: fmt.Sprintf("superseded by %s", r.To.Name)}
		if o.From.IsZero() || o.Phase == Pending {
			in.Kind = IntentAbort
		}
		err := tx.UpdateRelease(o.ID, func(raw []byte) ([]byte, error) {
			if err := o.Record(in); err != nil {
				return nil, err
			}
			return json.Marshal(o)
		})
		switch {
		case errors.Is(err, ErrConflict): // already stopping
		case err != nil:
			return Release{}, nil, err
		default:
			stopped = append(stopped, o.ID)
		}
	}
	_, err = tx.CreateRelease(func(id string) ([]byte, error) {
		r.ID = id
		return json.Marshal(r)
	})
	return r, stopped, err
}
