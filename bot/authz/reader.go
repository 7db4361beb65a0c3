package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/bot/signin"
)

// ReaderRole is the least role that lets a person read what shipbot shows
// of a project (the dashboard): the role GitLab itself wants before it
// shows a project's environments and deployments.
const ReaderRole = gitlab.Reporter

// Reader lets a read what shipbot shows of projects when they are a
// Reporter or above, inherited roles included, on any one of them, or
// returns why not: a refusal wraps ops.ErrForbidden, and any other error
// is GitLab failing. A project GitLab does not know is skipped.
func (z *Authorizer) Reader(ctx context.Context, a ops.Actor, projects []string) error {
	if a.Username == "" && a.UserID == 0 {
		return &refusal{reason: "shipbot does not know who you are on GitLab"}
	}
	uid, refused, err := z.userID(ctx, a)
	switch {
	case err != nil:
		return err
	case refused != "":
		return &refusal{reason: refused}
	}
	for _, path := range projects {
		pid, err := z.projectID(ctx, path)
		if errors.Is(err, gitlab.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("authz: %w", err)
		}
		l, err := z.level(ctx, pid, uid)
		if err != nil {
			return err
		}
		if l >= ReaderRole {
			return nil
		}
	}
	z.log.Info("authz: not a reader", "actor", a.Username, "user_id", uid, "projects", len(projects))
	return &refusal{reason: fmt.Sprintf("%s is not a %s or above on any project shipbot deploys", a.Username, roleName(ReaderRole))}
}

// Readers lets people read the dashboard (access: gitlab) when Reader
// does, on the projects shipbot deploys.
type Readers struct {
	Authorizer *Authorizer
	// People resolves the people a proxy names, who come without a GitLab
	// id; nil takes the proxy's name as the GitLab username.
	People   *Resolver
	Projects []string // the apps' projects, e.g. shop/web
}

// MayRead returns nil when p may read, or a refusal wrapping ops.ErrForbidden.
func (r Readers) MayRead(ctx context.Context, p signin.Person) error {
	a := ops.Actor{Username: p.Username, UserID: p.UserID}
	if p.UserID == 0 && r.People != nil {
		var err error
		if a, err = r.People.Resolve(ctx, Identity{Username: p.Username, Email: p.Email}); err != nil {
			return err
		}
	}
	return r.Authorizer.Reader(ctx, a, r.Projects)
}
