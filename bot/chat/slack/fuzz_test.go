package slack

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/bot/command"
	"github.com/shipbot/shipbot/bot/ops"
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

// FuzzSlash feeds /shipbot texts, which come from outside: nothing panics,
// only what bot/command accepts reaches ops, and no reply can link or
// mention, since it never holds an angle bracket.
func FuzzSlash(f *testing.F) {
	for _, seed := range []string{
		`lock prod2 "debugging"`, "unlock prod2", "deploy v1.3.0 to prod2", "help", "", "frobnicate",
		"deploy v1 to dev --project shop/web", "lock --project", "lock prod2 <!channel>", "lock dev --project a/b --project c/d",
		"promote 50", `lock prod2 "a & b"`, "lock prod2 \"x\"\n<@U1>",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		check := func(project, env string) {
			if !isProjectPath(project) || command.Parse("/unlock "+env).Outcome != command.OutcomeRun {
				t.Errorf("%q reached ops with project %q and environment %q", text, project, env)
			}
		}
		gov := Governance{
			Locks: fakeGovernor{
				lock: func(a ops.Actor, project, env, reason string) (release.Lock, error) {
					check(project, env)
					return release.Lock{Environment: env, Holder: a.Username, Reason: reason}, nil
				},
				unlock: func(a ops.Actor, project, env string) (release.Lock, error) {
					check(project, env)
					return release.Lock{}, fmt.Errorf("%w: %s is not locked", release.ErrConflict, env)
				},
			},
			Deploys: deployFunc(func(_ ops.Actor, project, _, env string) ([]release.Release, error) {
				check(project, env)
				return nil, nil
			}),
			Projects: func(string) []string { return []string{"shop/web"} },
		}
		d := &dispatcher{ids: gitlabByEmail, gov: gov, log: quiet()}
		reply := d.slash(context.Background(), slashCommand{userID: carol, text: text})
		if strings.ContainsAny(reply, "<>") {
			t.Errorf("/shipbot %q replied %q, with an angle bracket", text, reply)
		}
	})
}

// fakeGovernor is a Governor of test functions.
type fakeGovernor struct {
	lock   func(a ops.Actor, project, env, reason string) (release.Lock, error)
	unlock func(a ops.Actor, project, env string) (release.Lock, error)
}

var _ Governor = fakeGovernor{}

func (g fakeGovernor) Lock(_ context.Context, a ops.Actor, project, env, reason string) (release.Lock, error) {
	return g.lock(a, project, env, reason)
}

func (g fakeGovernor) Unlock(_ context.Context, a ops.Actor, project, env string) (release.Lock, error) {
	return g.unlock(a, project, env)
}

// deployFunc is a Deployer.
type deployFunc func(a ops.Actor, project, ref, env string) ([]release.Release, error)

var _ Deployer = deployFunc(nil)

func (f deployFunc) Deploy(_ context.Context, a ops.Actor, project, ref, env string) ([]release.Release, error) {
	return f(a, project, ref, env)
}
