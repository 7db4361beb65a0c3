package dingtalk

import (
	"context"
	"fmt"
	"net/http"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/deployer/release"
)

// Identities maps what a proxy says about a person to their GitLab
// account; *authz.Resolver does, from shipbot.yaml's users and GitLab.
// Refusals, e.g. a blocked account, wrap ops.ErrForbidden.
type Identities interface {
	Resolve(ctx context.Context, id authz.Identity) (ops.Actor, error)
}

var _ Identities = (*authz.Resolver)(nil)

// actor is the person confirming, as ops knows them. A robot's button
// carries no identity, so the request itself must say who it is: a person
// signed in with GitLab acts as that GitLab user, as they are; one a
// trusted proxy names is resolved through Identities, or taken as the
// GitLab username when there are none. Nobody wraps signin.ErrNoPerson.
func (h *Handler) actor(r *http.Request) (ops.Actor, error) {
	p, err := h.o.Identity.Identify(r)
	if err != nil {
		return ops.Actor{}, err
	}
	if p.UserID != 0 {
		return ops.Actor{Username: p.Username, UserID: p.UserID, Surface: release.SurfaceDingTalk}, nil
	}
	if h.o.Identities != nil {
		return h.o.Identities.Resolve(r.Context(), authz.Identity{Surface: release.SurfaceDingTalk, Username: p.Username, Email: p.Email})
	}
	if p.Username == "" {
		return ops.Actor{}, fmt.Errorf("%w: the proxy named no user", signin.ErrNoPerson)
	}
	return ops.Actor{Username: p.Username, Surface: release.SurfaceDingTalk}, nil
}
