package fakegitlab_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/test/fakegitlab"
)

const redirect = "https://shipbot.example/auth/gitlab/callback"

// authorize asks for a code as a browser would, without following the
// redirect; it returns where GitLab sends the browser.
func authorize(t *testing.T, s *fakegitlab.Server, q url.Values) (int, *url.URL) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(s.URL() + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	return resp.StatusCode, loc
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// The authorization-code flow with PKCE: a code is issued to the
// registered redirect URI with the state, and exchanged for a token only
// once, by the client, with the verifier its challenge was made from.
func TestOAuthCodeFlow(t *testing.T) {
	s := fakegitlab.New(t, token)
	s.SetUser(fakegitlab.User{ID: 10, Username: "alice", Name: "Alice"})
	s.SetOAuthApp(fakegitlab.OAuthApp{ClientID: "app", ClientSecret: "app-secret", RedirectURI: redirect, Scopes: []string{"read_user"}})
	verifier := strings.Repeat("v", 43)
	q := url.Values{"client_id": {"app"}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"read_user"},
		"state": {"st-1"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}

	if code, _ := authorize(t, s, q); code != http.StatusUnauthorized {
		t.Errorf("nobody signed in to GitLab: %d, want 401", code)
	}
	s.SignInAs(10)
	for _, bad := range []url.Values{{"client_id": {"other"}}, {"redirect_uri": {"https://evil.example/cb"}}} {
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = v
		}
		for k, v := range bad {
			q2[k] = v
		}
		if code, loc := authorize(t, s, q2); code != http.StatusBadRequest || loc != nil {
			t.Errorf("%v: %d to %v, want an error page and no redirect", bad, code, loc)
		}
	}
	code, loc := authorize(t, s, q)
	if code != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), redirect+"?") || loc.Query().Get("state") != "st-1" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d to %v", code, loc)
	}
	exchange := func(code, verifier, secret string) reply {
		return call(t, s, "POST", "/oauth/token", "", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirect}, "client_id": {"app"}, "client_secret": {secret}, "code_verifier": {verifier}})
	}
	if r := exchange(loc.Query().Get("code"), verifier, "wrong"); r.code != http.StatusUnauthorized || r.body["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %s", r.code, r.raw)
	}
	_, loc = authorize(t, s, q)
	if r := exchange(loc.Query().Get("code"), strings.Repeat("w", 43), "app-secret"); r.code != http.StatusBadRequest || r.body["error"] != "invalid_grant" {
		t.Errorf("wrong verifier: %d %s", r.code, r.raw)
	}
	if d := s.OAuthDenials(); len(d) != 2 || d[1] != "code_verifier does not match the code_challenge" {
		t.Errorf("denials %q", d)
	}
	_, loc = authorize(t, s, q)
	r := exchange(loc.Query().Get("code"), verifier, "app-secret")
	if r.code != http.StatusOK || r.body["token_type"] != "Bearer" || r.body["scope"] != "read_user" {
		t.Fatalf("exchange: %d %s", r.code, r.raw)
	}
	if again := exchange(loc.Query().Get("code"), verifier, "app-secret"); again.code != http.StatusBadRequest {
		t.Errorf("a code used twice: %d %s", again.code, again.raw)
	}

	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL()+"/api/v4/user", nil)
	req.Header.Set("Authorization", "Bearer "+r.body["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&me)
	if resp.StatusCode != http.StatusOK || me["id"] != 10.0 || me["username"] != "alice" {
		t.Errorf("GET /user with the token: %d %v", resp.StatusCode, me)
	}
	req.Header.Set("Authorization", "Bearer forged")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /user with a forged token: %v %v", resp.StatusCode, err)
	}
}

// A scope the application was not given, or a plain challenge, is
// refused back to the client with the state.
func TestOAuthAuthorizeErrors(t *testing.T) {
	s := fakegitlab.New(t, token)
	s.SetUser(fakegitlab.User{ID: 10, Username: "alice"})
	s.SignInAs(10)
	s.SetOAuthApp(fakegitlab.OAuthApp{ClientID: "app", ClientSecret: "x", RedirectURI: redirect, Scopes: []string{"read_user"}})
	base := url.Values{"client_id": {"app"}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"st"}}
	for scope, method := range map[string]string{"api": "S256", "read_user": "plain"} {
		q := url.Values{"scope": {scope}, "code_challenge": {"c"}, "code_challenge_method": {method}}
		for k, v := range base {
			q[k] = v
		}
		_, loc := authorize(t, s, q)
		if loc == nil || loc.Query().Get("error") == "" || loc.Query().Get("code") != "" || loc.Query().Get("state") != "st" {
			t.Errorf("scope %s, method %s: redirected to %v, want an error", scope, method, loc)
		}
	}
}
