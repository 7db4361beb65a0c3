package signin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// errBadCookie covers a cookie that is missing, was changed, was made for
// another purpose, or has expired; callers never need to tell these apart.
var errBadCookie = errors.New("no valid cookie")

// sealer signs and checks shipbot's cookies: base64url(JSON) "."
// base64url(HMAC-SHA256). Each purpose has a key of its own, derived from
// the session key, so that a state cookie can never pass for a session.
type sealer struct {
	key []byte
}

// Purposes of sealed values.
const (
	purposeSession = "session"
	purposeState   = "state"
)

func (s sealer) mac(purpose string, payload []byte) []byte {
	sub := hmac.New(sha256.New, s.key)
	sub.Write([]byte("shipbot signin " + purpose))
	m := hmac.New(sha256.New, sub.Sum(nil))
	m.Write(payload)
	return m.Sum(nil)
}

// canonical decodes only what seal encodes: one spelling per value.
var canonical = base64.RawURLEncoding.Strict()

// expiring is what every sealed value carries: when it stops being valid.
type expiring interface{ expiry() time.Time }

// seal signs v for purpose.
func (s sealer) seal(purpose string, v any) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(s.mac(purpose, payload)), nil
}

// open checks the MAC in constant time before it reads anything, then the
// expiry against now, and fills v.
func (s sealer) open(purpose, value string, now time.Time, v expiring) error {
	p, m, ok := strings.Cut(value, ".")
	if !ok {
		return errBadCookie
	}
	payload, err1 := canonical.DecodeString(p)
	sum, err2 := canonical.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(sum, s.mac(purpose, payload)) {
		return errBadCookie
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return errBadCookie
	}
	if !now.Before(v.expiry()) {
		return errBadCookie
	}
	return nil
}

// session is the signed-in person, in the session cookie.
type session struct {
	UserID   int64  `json:"uid"`
	Username string `json:"user"`
	Name     string `json:"name,omitempty"`
	Issued   int64  `json:"iat"` // unix seconds
	Expires  int64  `json:"exp"` // unix seconds
}

func (v *session) expiry() time.Time { return time.Unix(v.Expires, 0) }

// pending is a sign-in under way, in the state cookie: it binds GitLab's
// answer to the browser that started it.
type pending struct {
	State    string `json:"state"`
	Verifier string `json:"verifier"` // PKCE code verifier
	Return   string `json:"return"`   // local path to go back to
	Expires  int64  `json:"exp"`
}

func (v *pending) expiry() time.Time { return time.Unix(v.Expires, 0) }
