package signin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// gitlabUser is the part of GitLab's GET /api/v4/user that sign-in reads.
type gitlabUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	State    string `json:"state"` // active, blocked, deactivated, banned, ...
}

// whoami asks GitLab whose token tok is, with the token as a bearer token.
func (s *SignIn) whoami(ctx context.Context, tok *oauth2.Token) (gitlabUser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.o.GitLabURL+"/api/v4/user", nil)
	if err != nil {
		return gitlabUser{}, err
	}
	resp, err := s.conf.Client(ctx, tok).Do(req)
	if err != nil {
		return gitlabUser{}, fmt.Errorf("GET /api/v4/user: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return gitlabUser{}, fmt.Errorf("GET /api/v4/user: %s", resp.Status)
	}
	var u gitlabUser
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&u); err != nil {
		return gitlabUser{}, fmt.Errorf("GET /api/v4/user: %w", err)
	}
	if u.ID <= 0 || u.Username == "" {
		return gitlabUser{}, fmt.Errorf("GET /api/v4/user: no id or username in the answer")
	}
	return u, nil
}
