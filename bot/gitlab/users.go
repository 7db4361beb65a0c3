package gitlab

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// ErrAmbiguous is wrapped by lookups that matched more than one GitLab user.
var ErrAmbiguous = errors.New("ambiguous")

// User is a GitLab account.
type User struct {
	ID       int64
	Username string
	Name     string
	State    string // active, blocked, deactivated, banned, ...
}

// Active reports whether the account is in use: not blocked, banned or deactivated.
func (u User) Active() bool { return u.State == "active" }

// maxEmailCandidates bounds the users UserByEmail checks one by one: GitLab's
// search also matches names, so a search can return strangers.
const maxEmailCandidates = 10

// ProjectID returns the id of the project at path, e.g. "shop/web".
func (c *Client) ProjectID(ctx context.Context, path string) (int64, error) {
	if strings.TrimSpace(path) == "" {
		return 0, errors.New("gitlab: project id of an empty path")
	}
	p, _, err := c.gl.Projects.GetProject(path, &gl.GetProjectOptions{}, gl.WithContext(ctx))
	if err != nil {
		return 0, wrap(err, "project %q", path)
	}
	return p.ID, nil
}

// UserByUsername returns the user with this username, which GitLab matches
// without regard to case; ErrNotFound when there is none.
func (c *Client) UserByUsername(ctx context.Context, username string) (User, error) {
	username = strings.TrimPrefix(strings.TrimSpace(username), "@")
	if username == "" {
		return User{}, errors.New("gitlab: user by empty username")
	}
	us, _, err := c.gl.Users.ListUsers(&gl.ListUsersOptions{Username: gl.Ptr(username)}, gl.WithContext(ctx))
	if err != nil {
		return User{}, wrap(err, "user %q", username)
	}
	for _, u := range us {
		if strings.EqualFold(u.Username, username) {
			return toUser(u), nil
		}
	}
	return User{}, fmt.Errorf("gitlab: user %q: %w", username, ErrNotFound)
}

// UserByEmail returns the one user whose email is email: ErrNotFound when
// none is, ErrAmbiguous when several are.
//
// What GitLab lets it see depends on the token. An administrator's token
// finds users by their primary or secondary emails, private or not (only
// the primary one is confirmed against the answer, so a match on a
// secondary email alone is not found). Any other token finds only users who
// set this address as their public email, which most people never do: map
// them explicitly instead. GitLab's search also matches names and
// usernames, so every candidate is confirmed against its email, at the
// cost, without an admin token, of one GET /users/:id each.
func (c *Client) UserByEmail(ctx context.Context, email string) (User, error) {
	email = strings.TrimSpace(email)
	if !strings.Contains(email, "@") {
		return User{}, fmt.Errorf("gitlab: user by email %q: not an email address", email)
	}
	us, _, err := c.gl.Users.ListUsers(&gl.ListUsersOptions{
		ListOptions: gl.ListOptions{PerPage: maxEmailCandidates},
		Search:      gl.Ptr(email),
	}, gl.WithContext(ctx))
	if err != nil {
		return User{}, wrap(err, "users with email %q", email)
	}
	var found []User
	for _, u := range us {
		ok, err := c.hasEmail(ctx, u, email)
		if err != nil {
			return User{}, err
		}
		if ok {
			found = append(found, toUser(u))
		}
	}
	switch len(found) {
	case 0:
		return User{}, fmt.Errorf("gitlab: user with email %q: %w", email, ErrNotFound)
	case 1:
		return found[0], nil
	default:
		return User{}, fmt.Errorf("gitlab: user with email %q: %w: %d users have it", email, ErrAmbiguous, len(found))
	}
}

// hasEmail confirms a search result. An admin's list shows emails; anyone
// else's shows none, and the single-user endpoint shows the public one.
func (c *Client) hasEmail(ctx context.Context, u *gl.User, email string) (bool, error) {
	if u.Email != "" || u.PublicEmail != "" {
		return strings.EqualFold(u.Email, email) || strings.EqualFold(u.PublicEmail, email), nil
	}
	full, _, err := c.gl.Users.GetUser(u.ID, gl.GetUsersOptions{}, gl.WithContext(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return false, nil // gone since the search
	}
	if err != nil {
		return false, wrap(err, "user %d", u.ID)
	}
	return strings.EqualFold(full.PublicEmail, email), nil
}

func toUser(u *gl.User) User {
	return User{ID: u.ID, Username: u.Username, Name: u.Name, State: u.State}
}

// UserByToken returns the user a personal, project or group access token
// belongs to, as GitLab says (GET /user with that token). A token GitLab
// does not accept wraps ErrUnauthorized.
func (c *Client) UserByToken(ctx context.Context, token string) (User, error) {
	if token == "" {
		return User{}, fmt.Errorf("gitlab: who holds a token: empty token: %w", ErrUnauthorized)
	}
	as, err := c.as(token)
	if err != nil {
		return User{}, fmt.Errorf("gitlab: who holds a token: %w", err)
	}
	u, _, err := as.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		return User{}, wrap(err, "who holds a token") // 401 wraps ErrUnauthorized
	}
	return User{ID: u.ID, Username: u.Username, Name: u.Name, State: u.State}, nil
}
