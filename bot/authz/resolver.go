package authz

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// Mapping links one person's chat identities to their GitLab account, as an
// entry of shipbot.yaml's users: list does.
type Mapping struct {
	GitLab   string // GitLab username
	Slack    string // Slack user id, e.g. U024BE7LH
	DingTalk string // DingTalk staff id (userid)
	Email    string // an address the chat surfaces report for them
}

// Directory is what the Resolver asks of GitLab; *gitlab.Client has it.
type Directory interface {
	UserByUsername(ctx context.Context, username string) (gitlab.User, error)
	UserByEmail(ctx context.Context, email string) (gitlab.User, error)
}

var _ Directory = (*gitlab.Client)(nil)

// ResolverOptions configure a Resolver. Only GitLab is required.
type ResolverOptions struct {
	GitLab Directory
	Users  []Mapping // explicit links; the first entry for an id wins
	// NoEmailLookup stops the Resolver from asking GitLab for a user by
	// email, leaving only Users to link people.
	NoEmailLookup bool
	// TTL bounds how long GitLab's answers are reused; 0 means DefaultTTL
	// and a negative TTL turns caching off. Errors are never kept.
	TTL time.Duration
	Now func() time.Time // time.Now when nil
}

// Identity is who acted, as the surface they acted on knows them.
type Identity struct {
	Surface release.Surface
	ChatID  string // Slack user id or DingTalk staff id; empty on GitLab's own surfaces
	Email   string // the email the surface reports, e.g. Slack's users.info profile.email; optional
	// Username is a GitLab username, only from GitLab itself (a webhook's
	// user) or from a GitLab token: never from anything a chat user can edit.
	Username string
}

// Resolver maps surface identities to GitLab users. It is safe for concurrent use.
//
// It tries, in order: the Users entry for the Slack or DingTalk id; the
// Username that a GitLab surface gives; the Users entry for the email; and
// GitLab's own users by email. That last one finds only users whose public
// email it is, unless shipbot's token is an administrator's (see
// gitlab.Client.UserByEmail); explicit entries are the dependable way.
type Resolver struct {
	gl         Directory
	noEmail    bool
	bySlack    map[string]string // Slack id -> GitLab username
	byDingTalk map[string]string // DingTalk id -> GitLab username
	byEmail    map[string]string // lower-case email -> GitLab username
	usernames  *cache[string, gitlab.User]
	emails     *cache[string, gitlab.User]
}

// NewResolver returns a Resolver.
func NewResolver(o ResolverOptions) *Resolver {
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Resolver{
		gl: o.GitLab, noEmail: o.NoEmailLookup,
		bySlack: map[string]string{}, byDingTalk: map[string]string{}, byEmail: map[string]string{},
		usernames: newCache[string, gitlab.User](o.TTL, o.Now),
		emails:    newCache[string, gitlab.User](o.TTL, o.Now),
	}
	for _, m := range o.Users {
		if m.GitLab == "" {
			continue
		}
		addOnce(r.bySlack, m.Slack, m.GitLab)
		addOnce(r.byDingTalk, m.DingTalk, m.GitLab)
		addOnce(r.byEmail, strings.ToLower(strings.TrimSpace(m.Email)), m.GitLab)
	}
	return r
}

func addOnce(m map[string]string, k, v string) {
	if _, ok := m[k]; k != "" && !ok {
		m[k] = v
	}
}

// ErrNotMapped marks an identity that no GitLab user answers to.
var ErrNotMapped = ops.ErrNotMapped

// NotMappedError says why an identity could not be linked to a GitLab user
// and what to add to shipbot.yaml. It wraps ErrNotMapped and
// ops.ErrForbidden: someone shipbot cannot name may not act.
type NotMappedError struct {
	Identity Identity
	Reason   string // e.g. "Slack user U024BE7LH is not linked to a GitLab user"
}

// Error gives the reason and the shipbot.yaml entry that would fix it.
func (e *NotMappedError) Error() string {
	var key, val string
	switch id := e.Identity; {
	case id.Surface == release.SurfaceSlack && id.ChatID != "":
		key, val = "slack", id.ChatID
	case id.Surface == release.SurfaceDingTalk && id.ChatID != "":
		key, val = "dingtalk", strconv.Quote(id.ChatID) // quoted: staff ids may be all digits
	case id.Email != "":
		key, val = "email", id.Email
	default:
		return e.Reason // nothing shipbot.yaml could link
	}
	return fmt.Sprintf("%s. Ask a shipbot admin to add to shipbot.yaml:\nusers:\n  - gitlab: <GitLab username>\n    %s: %s", e.Reason, key, val)
}

// Unwrap makes errors.Is match both ErrNotMapped and ops.ErrForbidden.
func (e *NotMappedError) Unwrap() []error { return []error{ErrNotMapped, ops.ErrForbidden} }

// Resolve returns the actor behind id. An identity linked to no GitLab
// user gives a *NotMappedError, a blocked or deactivated account a refusal;
// both wrap ops.ErrForbidden. Other errors are GitLab failing.
func (r *Resolver) Resolve(ctx context.Context, id Identity) (ops.Actor, error) {
	u, err := r.user(ctx, id)
	if err != nil {
		return ops.Actor{}, err
	}
	if !u.Active() {
		return ops.Actor{}, &refusal{reason: fmt.Sprintf("GitLab account %s is %s", u.Username, u.State)}
	}
	return ops.Actor{Username: u.Username, UserID: u.ID, Surface: id.Surface, ChatID: id.ChatID}, nil
}

func (r *Resolver) user(ctx context.Context, id Identity) (gitlab.User, error) {
	if name, inConfig := r.linked(id); name != "" {
		u, err := r.byUsername(ctx, name)
		if errors.Is(err, gitlab.ErrNotFound) {
			reason := fmt.Sprintf("GitLab user %q does not exist", name)
			if inConfig {
				reason = fmt.Sprintf("%s is linked in shipbot.yaml to GitLab user %q, who does not exist", who(id), name)
			}
			return u, &NotMappedError{Identity: id, Reason: reason}
		}
		return u, err
	}
	reason := who(id) + " is not linked to a GitLab user"
	if id.Email != "" && !r.noEmail {
		u, err := r.byEmailLookup(ctx, id.Email)
		switch {
		case err == nil:
			return u, nil
		case errors.Is(err, gitlab.ErrAmbiguous):
			reason += ": several GitLab users have that email"
		case errors.Is(err, gitlab.ErrNotFound):
			reason += ": GitLab shows no user with that email"
		default:
			return u, err
		}
	}
	return gitlab.User{}, &NotMappedError{Identity: id, Reason: reason}
}

// linked is the GitLab username that id names without asking GitLab, and
// whether shipbot.yaml is what links them.
func (r *Resolver) linked(id Identity) (username string, inConfig bool) {
	email := strings.ToLower(strings.TrimSpace(id.Email))
	switch {
	case id.Surface == release.SurfaceSlack && r.bySlack[id.ChatID] != "":
		return r.bySlack[id.ChatID], true
	case id.Surface == release.SurfaceDingTalk && r.byDingTalk[id.ChatID] != "":
		return r.byDingTalk[id.ChatID], true
	case id.ChatID == "" && id.Username != "":
		return id.Username, false
	case email != "" && r.byEmail[email] != "":
		return r.byEmail[email], true
	}
	return "", false
}

// who names id for messages, e.g. "Slack user U024BE7LH (alice@corp.example)".
func who(id Identity) string {
	var s string
	switch {
	case id.Surface == release.SurfaceSlack && id.ChatID != "":
		s = "Slack user " + id.ChatID
	case id.Surface == release.SurfaceDingTalk && id.ChatID != "":
		s = "DingTalk user " + id.ChatID
	case id.Username != "":
		return "GitLab user " + id.Username
	case id.Email != "":
		return id.Email
	default:
		return "this " + string(id.Surface) + " user"
	}
	if id.Email != "" {
		s += " (" + id.Email + ")"
	}
	return s
}

func (r *Resolver) byUsername(ctx context.Context, name string) (gitlab.User, error) {
	u, err := r.usernames.load(ctx, strings.ToLower(name), func(ctx context.Context) (gitlab.User, error) {
		return r.gl.UserByUsername(ctx, name)
	})
	if err != nil {
		return u, fmt.Errorf("authz: %w", err)
	}
	return u, nil
}

func (r *Resolver) byEmailLookup(ctx context.Context, email string) (gitlab.User, error) {
	u, err := r.emails.load(ctx, strings.ToLower(strings.TrimSpace(email)), func(ctx context.Context) (gitlab.User, error) {
		return r.gl.UserByEmail(ctx, email)
	})
	if err != nil {
		return u, fmt.Errorf("authz: %w", err)
	}
	return u, nil
}
