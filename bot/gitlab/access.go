package gitlab

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// AccessLevel is a GitLab role, with GitLab's own numbers so it compares
// naturally (Developer < Maintainer). Persist it with String, not the number.
type AccessLevel int

// GitLab's access levels.
const (
	NoAccess      AccessLevel = 0
	MinimalAccess AccessLevel = 5
	Guest         AccessLevel = 10
	Planner       AccessLevel = 15
	Reporter      AccessLevel = 20
	Developer     AccessLevel = 30
	Maintainer    AccessLevel = 40
	Owner         AccessLevel = 50
)

var levelNames = map[AccessLevel]string{
	NoAccess:      "none",
	MinimalAccess: "minimal_access",
	Guest:         "guest",
	Planner:       "planner",
	Reporter:      "reporter",
	Developer:     "developer",
	Maintainer:    "maintainer",
	Owner:         "owner",
}

// String gives the role's name as GitLab writes it, e.g. "developer".
func (l AccessLevel) String() string {
	if name, ok := levelNames[l]; ok {
		return name
	}
	return "access_level(" + strconv.Itoa(int(l)) + ")"
}

// ParseAccessLevel reads a role name such as "developer" or "Maintainer".
func ParseAccessLevel(s string) (AccessLevel, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	for l, n := range levelNames {
		if n == name {
			return l, nil
		}
	}
	return 0, fmt.Errorf("gitlab: unknown access level %q (want none, minimal_access, guest, planner, reporter, developer, maintainer or owner)", s)
}

// MarshalText writes the role's name, so configs and stored records say "developer".
func (l AccessLevel) MarshalText() ([]byte, error) {
	if _, ok := levelNames[l]; !ok {
		return nil, fmt.Errorf("gitlab: unknown access level %d", int(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText reads a role's name.
func (l *AccessLevel) UnmarshalText(b []byte) error {
	v, err := ParseAccessLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// AccessLevel returns the user's effective role in the project, inherited
// from groups included; a user who is not a member has NoAccess, and so
// has one whose account is blocked, banned or deactivated: GitLab keeps
// their memberships.
func (c *Client) AccessLevel(ctx context.Context, projectID, userID int64) (AccessLevel, error) {
	m, _, err := c.gl.ProjectMembers.GetInheritedProjectMember(projectID, userID, gl.WithContext(ctx))
	if errors.Is(err, gl.ErrNotFound) {
		return NoAccess, nil
	}
	if err != nil {
		return NoAccess, wrap(err, "access level of user %d in project %d", userID, projectID)
	}
	if m.State != "" && m.State != "active" {
		return NoAccess, nil
	}
	return AccessLevel(m.AccessLevel), nil
}
