package slack

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shipbot/shipbot/deployer/release"
)

// A button carries its intent in its action_id ("shipbot:promote") and, in
// its value, the release, the stage it was drawn for (counted from 1) and a
// promote's percent ("r000000000012@2:50"). All come back in the click's
// payload, so the message needs no server state, and a click on a button
// drawn for an earlier stage is refused. Values without "@stage", from
// messages drawn before stages were carried, act on any stage.
const actionPrefix = "shipbot:"

// errNotOurs marks an action some other app or block put in the payload.
var errNotOurs = errors.New("not a shipbot action")

var intentKinds = []release.IntentKind{
	release.IntentContinue, release.IntentPause, release.IntentPromote,
	release.IntentPromoteFull, release.IntentRollback, release.IntentAbort,
}

func actionID(k release.IntentKind) string { return actionPrefix + string(k) }

func actionValue(releaseID string, in release.Intent) string {
	v := releaseID
	if in.Drawn != 0 {
		v += "@" + strconv.Itoa(in.Drawn)
	}
	if in.Kind == release.IntentPromote {
		v += ":" + strconv.Itoa(in.Percent)
	}
	return v
}

// parseAction reads a button's action_id and value back into the release
// it acts on and the intent it asks for. The payload is signed by Slack, but
// the value is ours to distrust all the same.
func parseAction(id, value string) (string, release.Intent, error) {
	name, ok := strings.CutPrefix(id, actionPrefix)
	if !ok {
		return "", release.Intent{}, errNotOurs
	}
	kind := release.IntentKind(name)
	if !slices.Contains(intentKinds, kind) {
		return "", release.Intent{}, fmt.Errorf("action %q: unknown intent", id)
	}
	head, pct, hasPct := strings.Cut(value, ":")
	rel, stage, hasStage := strings.Cut(head, "@")
	if !validReleaseID(rel) {
		return "", release.Intent{}, fmt.Errorf("action %q: bad release id %q", id, rel)
	}
	in := release.Intent{Kind: kind}
	if hasStage {
		n, err := strconv.Atoi(stage)
		if err != nil || n < 1 || n > 1000 || strconv.Itoa(n) != stage {
			return "", release.Intent{}, fmt.Errorf("action %q: bad stage %q", id, stage)
		}
		in.Drawn = n
	}
	if hasPct != (kind == release.IntentPromote) {
		return "", release.Intent{}, fmt.Errorf("action %q: value %q: a percent goes with promote, and only with it", id, value)
	}
	if hasPct {
		p, err := strconv.Atoi(pct)
		if err != nil || p < 1 || p > 100 || strconv.Itoa(p) != pct {
			return "", release.Intent{}, fmt.Errorf("action %q: bad percent %q", id, pct)
		}
		in.Percent = p
	}
	return rel, in, nil
}

// validReleaseID accepts the store's ids (r000000000012) and anything
// similarly tame: short, lower-case letters, digits and dashes.
func validReleaseID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
