package dingtalk

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testTokens(t testing.TB, now *time.Time) *Tokens {
	tk, err := NewTokens("0123456789abcdef-test-secret-of-32+", 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tk.Now = func() time.Time { return *now }
	return tk
}

func TestTokenRoundTripAndExpiry(t *testing.T) {
	now := t0
	tk := testTokens(t, &now)
	tok, err := tk.Issue(Action{Release: "r000000000001", Kind: release.IntentPromote, Percent: 50, Stage: 1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(tok, "+/=?&#") {
		t.Errorf("token %q is not URL-safe", tok)
	}
	a, err := tk.Parse(tok)
	if err != nil || a.Release != "r000000000001" || a.Kind != release.IntentPromote || a.Percent != 50 || a.Stage != 1 || a.Nonce == "" {
		t.Fatalf("parsed %+v, %v", a, err)
	}
	if a.Expires != t0.Add(30*time.Minute).Unix() {
		t.Errorf("expires %d", a.Expires)
	}
	other, _ := tk.Issue(Action{Release: "r000000000001", Kind: release.IntentPromote, Percent: 50, Stage: 1})
	if b, _ := tk.Parse(other); b.Nonce == a.Nonce {
		t.Error("two links share a nonce")
	}
	now = t0.Add(30*time.Minute - time.Second)
	if _, err := tk.Parse(tok); err != nil {
		t.Errorf("just before expiry: %v", err)
	}
	now = t0.Add(30 * time.Minute)
	if a, err := tk.Parse(tok); !errors.Is(err, ErrTokenExpired) || a.Kind != release.IntentPromote {
		t.Errorf("at expiry: %+v, %v", a, err)
	}
}

func TestTamperedTokensAreRejected(t *testing.T) {
	now := t0
	tk := testTokens(t, &now)
	tok, _ := tk.Issue(Action{Release: "r1", Kind: release.IntentAbort})
	payload, sig, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	forged := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), `"abort"`, `"promote-full"`, 1)))
	stranger, _ := NewTokens("another-secret-of-thirty-two-bytes", 0)
	foreign, _ := stranger.Issue(Action{Release: "r1", Kind: release.IntentAbort})
	for name, bad := range map[string]string{
		"payload changed":   forged + "." + sig,
		"signature changed": payload + "." + flip(sig),
		"no signature":      payload,
		"empty":             "",
		"other key":         foreign,
		"too long":          tok + strings.Repeat("A", 2000),
	} {
		if _, err := tk.Parse(bad); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("%s: %v, want ErrTokenInvalid", name, err)
		}
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestNewTokensRefusesShortSecrets(t *testing.T) {
	if _, err := NewTokens("short", 0); !errors.Is(err, release.ErrInvalid) {
		t.Errorf("short secret: %v", err)
	}
}

func FuzzParseToken(f *testing.F) {
	now := t0
	tk := testTokens(f, &now)
	tok, _ := tk.Issue(Action{Release: "r1", Kind: release.IntentContinue})
	f.Add(tok)
	f.Add("")
	f.Add(".")
	f.Add("e30.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := tk.Parse(s)
		if err == nil && (a.Release == "" || a.Nonce == "") {
			t.Errorf("accepted %q as %+v", s, a)
		}
		if err == nil {
			payload, _, _ := strings.Cut(s, ".")
			if canonical := payload + "." + base64.RawURLEncoding.EncodeToString(tk.mac(payload)); s != canonical {
				t.Errorf("accepted %q, another spelling of %q", s, canonical)
			}
		}
	})
}
