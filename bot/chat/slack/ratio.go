package slack

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/deployer/release"
)

// The "Set ratio…" button opens a modal with a number input; submitting
// the modal records a promote to that percent. The button carries what the
// promote needs ("r000000000012@2"), and the modal keeps it, with the
// channel to answer a refusal in, in its private metadata
// ("r000000000012@2#C0123"), so no server state is kept between the two.
const (
	ratioAction   = actionPrefix + "ratio" // the button
	ratioCallback = actionPrefix + "ratio" // the modal
	ratioBlock    = "shipbot-ratio"
	ratioInput    = "percent"
)

// ratioButton is offered on a paused release whose environment allows any
// weight (release.anyWeight).
func ratioButton(r release.Release) *slack.ButtonBlockElement {
	if r.Phase != release.Paused || !r.AnyWeight || !allowed(r, release.Intent{Kind: release.IntentPromote, Percent: 100}) {
		return nil
	}
	return slack.NewButtonBlockElement(ratioAction, fmt.Sprintf("%s@%d", r.ID, r.Stage+1), plain("Set ratio…"))
}

// ratioModal asks for the percent of traffic on the new version.
func ratioModal(releaseID string, drawn int, channel string) slack.ModalViewRequest {
	in := slack.NewNumberInputBlockElement(plain("e.g. 20"), ratioInput, false)
	in.MinValue, in.MaxValue = "1", "100"
	input := slack.NewInputBlock(ratioBlock, plain("Percent of traffic on the new version"), plain("1 to 100, above where the release stands"), in)
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: ratioCallback,
		Title: plain("Set ratio"), Submit: plain("Promote"), Close: plain("Cancel"),
		Blocks:          slack.Blocks{BlockSet: []slack.Block{input}},
		PrivateMetadata: fmt.Sprintf("%s@%d#%s", releaseID, drawn, channel),
	}
}

// openRatio answers a click on "Set ratio…" by opening the modal; it must
// happen within the 3 s the click's trigger id lives.
func (d *dispatcher) openRatio(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	id, drawn, err := parseRatioValue(a.Value)
	if err != nil {
		d.log.Warn("slack: unreadable ratio button", "user", cb.User.ID, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, actBudget)
	defer cancel()
	if _, err := d.api.OpenViewContext(ctx, cb.TriggerID, ratioModal(id, drawn, cb.Channel.ID)); err != nil {
		d.log.Warn("slack: open ratio modal", "release", id, "err", wrap("views.open", err))
	}
}

// ratioSubmission reads a submitted ratio modal as a click of a promote
// button; ok is false for any other view.
func ratioSubmission(cb slack.InteractionCallback) (c click, ok bool, err error) {
	if cb.Type != slack.InteractionTypeViewSubmission || cb.View.CallbackID != ratioCallback {
		return click{}, false, nil
	}
	value, channel, _ := strings.Cut(cb.View.PrivateMetadata, "#")
	id, drawn, err := parseRatioValue(value)
	if err != nil {
		return click{}, true, err
	}
	raw := ""
	if cb.View.State != nil {
		raw = cb.View.State.Values[ratioBlock][ratioInput].Value
	}
	p, err := strconv.Atoi(raw)
	if err != nil || p < 1 || p > 100 {
		return click{}, true, fmt.Errorf("ratio %q is not a whole percent from 1 to 100", raw)
	}
	in := release.Intent{Kind: release.IntentPromote, Percent: p, Drawn: drawn}
	return click{releaseID: id, intent: in, userID: cb.User.ID, channelID: channel}, true, nil
}

// parseRatioValue reads "r000000000012@2"; the value is signed by Slack,
// but ours to distrust all the same.
func parseRatioValue(v string) (string, int, error) {
	id, stage, _ := strings.Cut(v, "@")
	n, err := strconv.Atoi(stage)
	if !validReleaseID(id) || err != nil || n < 1 || n > 1000 {
		return "", 0, fmt.Errorf("ratio value %q: want release@stage", v)
	}
	return id, n, nil
}
