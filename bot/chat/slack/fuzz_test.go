package slack

import (
	"testing"

	"github.com/shipbot/shipbot/deployer/release"
)

// FuzzParseAction feeds button ids and values, which come from outside:
// parsing never panics, and what it accepts encodes back to the same button.
func FuzzParseAction(f *testing.F) {
	for _, seed := range [][2]string{
		{"shipbot:continue", "r000000000007"},
		{"shipbot:promote", "r000000000007:50"},
		{"shipbot:promote", "r000000000007:050"},
		{"shipbot:promote-full", "r000000000007:100"},
		{"shipbot:abort", ""},
		{"shipbot:", "r1"},
		{"other:continue", "r1"},
		{"shipbot:pause", "R1"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, id, value string) {
		rel, in, err := parseAction(id, value)
		if err != nil {
			return
		}
		if actionID(in.Kind) != id || actionValue(rel, in) != value {
			t.Errorf("(%q, %q) parsed to %s %+v, which encodes to (%q, %q)", id, value, rel, in, actionID(in.Kind), actionValue(rel, in))
		}
		if in.Kind == release.IntentPromote && (in.Percent < 1 || in.Percent > 100) {
			t.Errorf("(%q, %q): percent %d", id, value, in.Percent)
		}
	})
}

// FuzzParseInteraction feeds request bodies past the signature check, as a
// leaked signing secret would allow: nothing panics.
func FuzzParseInteraction(f *testing.F) {
	f.Add([]byte("payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B%7B%22action_id%22%3A%22shipbot%3Apause%22%2C%22value%22%3A%22r1%22%7D%5D%7D"))
	f.Add([]byte("payload=%7B%7D"))
	f.Add([]byte("payload=%ZZ"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := parseInteraction(body)
		if err != nil {
			return
		}
		_, _ = clicks(cb)
	})
}
