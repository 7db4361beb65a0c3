package fakegitlab

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// OAuthApp is an application registered in GitLab (Admin → Applications,
// or a group's or user's Applications page), as GitLab's OAuth 2 provider
// knows it.
type OAuthApp struct {
	ClientID     string // GitLab's "Application ID"
	ClientSecret string
	RedirectURI  string   // matched exactly, as GitLab does
	Scopes       []string // e.g. read_user
}

// The lifetimes GitLab gives: authorization codes last 10 minutes, access
// tokens 2 hours.
const (
	oauthCodeTTL  = 10 * time.Minute
	oauthTokenTTL = 2 * time.Hour
)

// oauthState is the fake's OAuth provider. Its zero value has no
// application and nobody signed in.
type oauthState struct {
	apps     map[string]OAuthApp   // client id -> app
	signedIn int64                 // the user the browser is signed in to GitLab as; 0 for nobody
	codes    map[string]oauthGrant // authorization code -> grant
	tokens   map[string]oauthGrant // access token -> grant
	denials  []string              // why token requests were refused, for tests
}

// oauthGrant is what a code or an access token stands for.
type oauthGrant struct {
	app       string
	user      int64
	redirect  string
	scopes    []string
	challenge string // PKCE code_challenge (S256); empty when the client sent none
	expires   time.Time
}

func (s *Server) oauthRoutes() {
	s.mux.HandleFunc("GET /oauth/authorize", s.authorize)
	s.mux.HandleFunc("POST /oauth/token", s.exchange)
}

// SetOAuthApp registers an application, replacing one with the same client id.
func (s *Server) SetOAuthApp(app OAuthApp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oauth.apps == nil {
		s.oauth.apps = map[string]OAuthApp{}
	}
	s.oauth.apps[app.ClientID] = app
}

// SignInAs makes userID, who must be set with SetUser, the person signed in
// to GitLab in the browser: /oauth/authorize then authorizes applications
// for them at once, as for an application they approved before. 0 signs
// out: /oauth/authorize then answers 401, where GitLab would show its
// sign-in form.
func (s *Server) SignInAs(userID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.signedIn = userID
}

// OAuthDenials lists why /oauth/token refused requests, e.g. "code_verifier
// does not match the code_challenge", in order.
func (s *Server) OAuthDenials() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.oauth.denials)
}

// authorize answers GET /oauth/authorize as GitLab does for a signed-in
// user and a known application: a redirect to redirect_uri with a code
// and the state, or with an error. An unknown client or redirect_uri gets
// an error page instead, since redirecting there would be an open redirect.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	app, ok := s.oauth.apps[q.Get("client_id")]
	if !ok || q.Get("redirect_uri") != app.RedirectURI {
		http.Error(w, "The client is not authorized to perform this request, or the redirect URI is not valid.", http.StatusBadRequest)
		return
	}
	back := func(v url.Values) {
		if st := q.Get("state"); st != "" {
			v.Set("state", st)
		}
		http.Redirect(w, r, app.RedirectURI+"?"+v.Encode(), http.StatusFound)
	}
	scopes := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	case len(scopes) == 0 || slices.ContainsFunc(scopes, func(sc string) bool { return !slices.Contains(app.Scopes, sc) }):
		back(url.Values{"error": {"invalid_scope"}, "error_description": {"The requested scope is invalid, unknown, or malformed."}})
		return
	case q.Has("code_challenge") && q.Get("code_challenge_method") != "S256":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"Code challenge method must be S256."}})
		return
	}
	user := s.dir.users[s.oauth.signedIn]
	if user == nil {
		http.Error(w, "You need to sign in or sign up before continuing.", http.StatusUnauthorized)
		return
	}
	code := randomString()
	if s.oauth.codes == nil {
		s.oauth.codes = map[string]oauthGrant{}
	}
	s.oauth.codes[code] = oauthGrant{app: app.ClientID, user: user.ID, redirect: app.RedirectURI, scopes: scopes,
		challenge: q.Get("code_challenge"), expires: s.now().Add(oauthCodeTTL)}
	back(url.Values{"code": {code}})
}

// tokenJSON is Doorkeeper's token response.
type tokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	CreatedAt    int64  `json:"created_at"`
}

// exchange answers POST /oauth/token for grant_type=authorization_code. The
// client authenticates with client_id and client_secret in the body or as
// HTTP basic auth; a code works once, for the redirect_uri it was issued
// to, and only with the code_verifier whose S256 hash is its challenge.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		s.oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	app, ok := s.oauth.apps[id]
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(app.ClientSecret)) != 1 {
		s.oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "authorization_code" {
		s.oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+gt+" is not supported here")
		return
	}
	code := r.PostForm.Get("code")
	g, ok := s.oauth.codes[code]
	delete(s.oauth.codes, code) // a code works once, even when the request fails
	switch {
	case !ok:
		s.oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or used code")
		return
	case g.app != app.ClientID || g.redirect != r.PostForm.Get("redirect_uri"):
		s.oauthError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client or redirect_uri")
		return
	case s.now().After(g.expires):
		s.oauthError(w, http.StatusBadRequest, "invalid_grant", "the code has expired")
		return
	case g.challenge != "" && !pkceMatches(r.PostForm.Get("code_verifier"), g.challenge):
		s.oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	access := randomString()
	g.expires = s.now().Add(oauthTokenTTL)
	if s.oauth.tokens == nil {
		s.oauth.tokens = map[string]oauthGrant{}
	}
	s.oauth.tokens[access] = g
	writeJSON(w, http.StatusOK, tokenJSON{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(oauthTokenTTL / time.Second),
		RefreshToken: randomString(), Scope: strings.Join(g.scopes, " "), CreatedAt: s.now().Unix()})
}

// pkceMatches is RFC 7636's S256 check: BASE64URL(SHA256(verifier)) == challenge.
func pkceMatches(verifier, challenge string) bool {
	if verifier == "" {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// oauthError answers like Doorkeeper: {"error", "error_description"}.
// Callers hold s.mu.
func (s *Server) oauthError(w http.ResponseWriter, code int, kind, why string) {
	s.oauth.denials = append(s.oauth.denials, why)
	writeJSON(w, code, map[string]string{"error": kind, "error_description": why})
}

// oauthUser is the user an OAuth access token with scope read_user (or
// api) in Authorization: Bearer belongs to. Callers hold s.mu.
func (s *Server) oauthUser(r *http.Request) (int64, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return 0, false
	}
	for tok, g := range s.oauth.tokens {
		if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 && s.now().Before(g.expires) &&
			(slices.Contains(g.scopes, "read_user") || slices.Contains(g.scopes, "api")) {
			return g.user, true
		}
	}
	return 0, false
}

func randomString() string { return rand.Text() }
