package release

import (
	"context"
	"fmt"
)

// ReasonGroupWait says a release waits for the other members of its group
// to finish a stage before it starts the next.
const ReasonGroupWait Reason = "WaitingForGroup"

// A group is releases that move together: the apps of one tag build that
// share release.group, on every cluster of an environment. They keep in
// step: none starts stage k until every other member has done stage k-1
// (members whose stage lists differ, such as a first release, which goes
// straight to 100 %, wait only for each other's end of stages). When one
// fails or rolls back, the others roll back: the group lands together or
// not at all. A member aborted by a person, or because it already served
// the version, stops no one.

// members reads the other releases of r's group.
func (e *Stepper) members(ctx context.Context, r *Release) ([]Release, error) {
	all, err := e.all(ctx)
	if err != nil {
		return nil, err
	}
	var out []Release
	for _, o := range all {
		if o.Group == r.Group && o.ID != r.ID {
			out = append(out, o)
		}
	}
	return out, nil
}

// failedMember is a member that failed or rolls back, if any.
func failedMember(ms []Release) *Release {
	for i, m := range ms {
		switch m.Phase {
		case RollingBack, RolledBack, Failed:
			return &ms[i]
		}
	}
	return nil
}

func memberName(m *Release) string {
	return fmt.Sprintf("release %s (%s %s in %s on %s)", m.ID, m.App, m.To.Name, m.Environment, m.Cluster)
}

// followGroup rolls r back once another member of its group has failed or
// rolls back; one that has not started yet is aborted, since it has
// nothing to roll back. It reports whether it moved r.
func (s *stepper) followGroup(ctx context.Context) (bool, error) {
	r := s.r
	if r.Group == "" || r.Phase.Terminal() || r.Phase == RollingBack {
		return false, nil
	}
	ms, err := s.e.members(ctx, r)
	if err != nil {
		return false, err
	}
	m := failedMember(ms)
	if m == nil {
		return false, nil
	}
	why := fmt.Sprintf("group %s: %s is %s", r.Group, memberName(m), m.Phase)
	if r.Phase == Pending {
		r.Reason = why
		return true, s.transition(ctx, Aborted, why, ReasonAborted, why)
	}
	return true, s.fail(ctx, FailRollback, why)
}

// groupBarrier waits, before stage Stage (or the end), until every other
// active member of the group has done the stages before it.
func (s *stepper) groupBarrier(ctx context.Context) (*Result, error) {
	r := s.r
	if r.Group == "" {
		return nil, nil
	}
	ms, err := s.e.members(ctx, r)
	if err != nil {
		return nil, err
	}
	for i := range ms {
		m := &ms[i]
		if m.Phase.Terminal() {
			continue
		}
		behind := m.Stage < r.Stage && len(m.Stages) == len(r.Stages)
		if r.Stage >= len(r.Stages) {
			behind = m.Stage < len(m.Stages) // the end waits for every member's last stage
		}
		if behind {
			why := fmt.Sprintf("waiting for %s to finish stage %d/%d", memberName(m), min(m.Stage+1, len(m.Stages)), len(m.Stages))
			if last := r.lastEvent(); last != string(ReasonGroupWait)+": "+why {
				s.e.emit(ctx, r, ReasonGroupWait, why)
				if err := s.save(ctx, "wait for group"); err != nil {
					return nil, err
				}
			}
			return s.wait(s.e.poll), nil
		}
	}
	return nil, nil
}
