package dingtalk

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

// Token errors; the confirmation page maps them to 403 and 410.
var (
	ErrTokenInvalid = errors.New("this link is not valid")
	ErrTokenExpired = errors.New("this link has expired")
)

// Action is what one button link asks for. It travels in the link, signed.
type Action struct {
	Release string             `json:"r"`
	Kind    release.IntentKind `json:"k"`
	Percent int                `json:"p,omitempty"` // promote only
	// Ask makes a promote link whose page asks for the percent (release.anyWeight).
	Ask     bool   `json:"a,omitempty"`
	Stage   int    `json:"s"` // the release's stage when the message was sent
	Expires int64  `json:"e"` // unix seconds
	Nonce   string `json:"n"` // random; names the link in the used-links record
}

// Intent is the intent the action asks for, without actor and time.
func (a Action) Intent() release.Intent {
	return release.Intent{Kind: a.Kind, Percent: a.Percent}
}

// Label is how buttons and pages name the action, e.g. "Promote to 50 %".
func (a Action) Label() string {
	switch a.Kind {
	case release.IntentContinue:
		return "Continue"
	case release.IntentPause:
		return "Pause"
	case release.IntentPromote:
		if a.Ask && a.Percent == 0 {
			return "Set ratio…"
		}
		return fmt.Sprintf("Promote to %d %%", a.Percent)
	case release.IntentPromoteFull:
		return "Promote to 100 %"
	case release.IntentRollback:
		return "Roll back"
	case release.IntentAbort:
		return "Abort"
	}
	return string(a.Kind)
}

// stageBound reports whether the action only makes sense at the stage the
// message showed: a "continue" clicked on an old message must not start a
// later stage nobody looked at. Pause, rollback and abort stop things and
// are fine at any stage.
func (a Action) stageBound() bool {
	switch a.Kind {
	case release.IntentContinue, release.IntentPromote, release.IntentPromoteFull:
		return true
	}
	return false
}

// Tokens signs and checks action links.
type Tokens struct {
	key []byte
	ttl time.Duration
	// Now is the clock for expiry; time.Now when nil.
	Now func() time.Time
}

// DefaultLinkTTL is how long a button works after its message was sent.
const DefaultLinkTTL = 30 * time.Minute

// minKeyLen keeps a guessable secret from signing links that act on production.
const minKeyLen = 32

// tokenContext separates these MACs from any other use of the same secret.
const tokenContext = "shipbot.dingtalk.action/v1\n"

// NewTokens makes a signer with secret as the HMAC key; ttl is
// DefaultLinkTTL when 0.
func NewTokens(secret string, ttl time.Duration) (*Tokens, error) {
	if len(secret) < minKeyLen {
		return nil, fmt.Errorf("dingtalk link secret: %w: need at least %d bytes", release.ErrInvalid, minKeyLen)
	}
	if ttl == 0 {
		ttl = DefaultLinkTTL
	}
	if ttl < 0 {
		return nil, fmt.Errorf("dingtalk link TTL %s: %w: must be positive", ttl, release.ErrInvalid)
	}
	return &Tokens{key: []byte(secret), ttl: ttl}, nil
}

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Issue fills in the action's expiry and nonce and returns its token:
// base64url(JSON) "." base64url(HMAC-SHA256(key, context + base64url(JSON))).
func (t *Tokens) Issue(a Action) (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	a.Nonce = base64.RawURLEncoding.EncodeToString(nonce)
	a.Expires = t.now().Add(t.ttl).Unix()
	raw, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(raw)
	return payload + "." + base64.RawURLEncoding.EncodeToString(t.mac(payload)), nil
}

func (t *Tokens) mac(payload string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(tokenContext))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// strict refuses the non-canonical encodings lenient decoding lets through,
// so that one link has one spelling.
var strict = base64.RawURLEncoding.Strict()

// maxTokenLen bounds what Parse reads; real tokens are about 200 bytes.
const maxTokenLen = 1024

// Parse checks a token's signature, in constant time, before reading it,
// then its expiry. Errors are ErrTokenInvalid or ErrTokenExpired; with the
// latter the action is returned too, for the page to name it.
func (t *Tokens) Parse(token string) (Action, error) {
	if len(token) > maxTokenLen {
		return Action{}, ErrTokenInvalid
	}
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Action{}, ErrTokenInvalid
	}
	got, err := strict.DecodeString(sig)
	if err != nil || !hmac.Equal(got, t.mac(payload)) {
		return Action{}, ErrTokenInvalid
	}
	raw, err := strict.DecodeString(payload)
	if err != nil {
		return Action{}, ErrTokenInvalid
	}
	var a Action
	if err := json.Unmarshal(raw, &a); err != nil || a.Release == "" || a.Nonce == "" || a.Kind == "" {
		return Action{}, ErrTokenInvalid
	}
	if !t.now().Before(time.Unix(a.Expires, 0)) {
		return a, ErrTokenExpired
	}
	return a, nil
}
