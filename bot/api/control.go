package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/deployer/release"
)

// Control actions, the last segment of POST /releases/:id/<action>.
const (
	ActionContinue = "continue" // start the stage a paused release waits at
	ActionPause    = "pause"    // stop advancing
	ActionPromote  = "promote"  // jump to a stage, or to the last with full
	ActionRollback = "rollback" // return everything to the previous revision
	ActionAbort    = "abort"    // stop now, leaving the cluster as it is
)

// actions are the control actions, in the order people meet them.
var actions = []string{ActionContinue, ActionPause, ActionPromote, ActionRollback, ActionAbort}

// Limits on what a control request may carry.
const (
	maxBody    = 16 << 10
	maxComment = 1000
	maxActor   = 128
)

// ControlRequest is the body of a control request. Every field is
// optional; promote needs exactly one of Percent and Full.
type ControlRequest struct {
	Percent *int   `json:"percent,omitempty"` // promote: jump to the stage with this target
	Full    bool   `json:"full,omitempty"`    // promote: jump to the last stage (100 %)
	Comment string `json:"comment,omitempty"` // why, kept in the release's history
}

// get answers GET /releases/:id.
func (a *API) get(c echo.Context) error {
	id := c.Param("id")
	r, err := a.releases.Get(c.Request().Context(), id)
	if err != nil {
		return a.fail(c, id, err)
	}
	return c.JSON(http.StatusOK, a.view(r))
}

// control answers POST /releases/:id/<action>: it records the intent and
// answers 202, because the engine acts on it at its next step.
func (a *API) control(action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		in, what, err := a.parseIntent(c, action)
		if err != nil {
			return badRequest(c, what, "%s", err.Error())
		}
		var r release.Release
		if p, ok := personOf(c); ok {
			p.Surface = in.Surface
			r, err = a.ops.Act(c.Request().Context(), p, id, in)
		} else {
			r, err = a.releases.Record(c.Request().Context(), id, in)
		}
		if err != nil {
			return a.fail(c, id, err)
		}
		a.log.Info("release intent recorded", "release", id, "intent", in.String(), "actor", in.Actor, "surface", in.Surface)
		return c.JSON(http.StatusAccepted, a.view(r))
	}
}

// parseIntent reads who acts, from where, and the body. On error it also
// says which header, field or the body is wrong.
func (a *API) parseIntent(c echo.Context, action string) (release.Intent, string, error) {
	h := c.Request().Header
	in := release.Intent{Kind: release.IntentKind(action), Actor: strings.TrimSpace(h.Get(HeaderActor))}
	if p, ok := personOf(c); ok {
		in.Actor = p.Username // the token says who acts, whatever the header says
	} else if what, err := operatorActor(in.Actor); err != nil {
		return in, what, err
	}
	switch s := strings.TrimSpace(h.Get(HeaderSurface)); s {
	case "", string(release.SurfaceAPI):
		in.Surface = release.SurfaceAPI
	case string(release.SurfaceCLI):
		in.Surface = release.SurfaceCLI
	default:
		return in, HeaderSurface, fmt.Errorf("%q is not cli or api", s)
	}
	body, err := decodeBody(c)
	if err != nil {
		return in, "body", err
	}
	if len(body.Comment) > maxComment {
		return in, "comment", fmt.Errorf("longer than %d bytes", maxComment)
	}
	in.Comment = strings.TrimSpace(body.Comment)
	what, err := promotion(action, body, &in)
	return in, what, err
}

// gitlabUsername is what GitLab allows in a username: letters, digits,
// '_', '.' and '-', not starting with '-' or '.'.
var gitlabUsername = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// operatorActor checks the name the operator token acts as: a GitLab
// username, so that no markup or look-alike reaches the history, chat
// cards or MR replies through it.
func operatorActor(actor string) (string, error) {
	switch {
	case actor == "":
		return HeaderActor, errors.New("missing: say who is acting")
	case len(actor) > maxActor || !gitlabUsername.MatchString(actor):
		return HeaderActor, fmt.Errorf("%q is not a GitLab username (letters, digits, '_', '.', '-', at most %d)", actor, maxActor)
	case strings.EqualFold(actor, release.EngineActor):
		// The history would read as if the engine had acted on its own.
		return HeaderActor, fmt.Errorf("%q is shipbot's own name; say who is acting", actor)
	}
	return "", nil
}

// promotion checks percent and full, which only promote takes, and sets
// the intent's kind and percent from them.
func promotion(action string, body ControlRequest, in *release.Intent) (string, error) {
	switch {
	case action != ActionPromote && body.Percent != nil:
		return "percent", fmt.Errorf("only promote takes a percent")
	case action != ActionPromote && body.Full:
		return "full", fmt.Errorf("only promote takes full")
	case action != ActionPromote:
		return "", nil
	case body.Full && body.Percent != nil:
		return "body", errors.New(`give "percent" or "full", not both`)
	case body.Full:
		in.Kind = release.IntentPromoteFull
		return "", nil
	case body.Percent == nil:
		return "body", errors.New(`promote needs {"percent": N} or {"full": true}`)
	case *body.Percent < 1 || *body.Percent > 100:
		return "percent", fmt.Errorf("%d is not in 1..100", *body.Percent)
	}
	in.Percent = *body.Percent
	return "", nil
}

// decodeBody reads an optional JSON body of at most maxBody bytes.
func decodeBody(c echo.Context) (ControlRequest, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
	if err != nil {
		return ControlRequest{}, fmt.Errorf("could not read it (at most %d bytes)", maxBody)
	}
	return parseBody(raw)
}

// readJSON reads a JSON body of at most maxBody bytes into a T, refusing
// unknown fields so that a typo never silently becomes another request.
// An empty body is the zero T when optional, and a decoding error if not.
func readJSON[T any](c echo.Context, optional bool) (T, error) {
	var body T
	raw, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
	if err != nil {
		return body, fmt.Errorf("could not read it (at most %d bytes)", maxBody)
	}
	if optional && len(bytes.TrimSpace(raw)) == 0 {
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return body, jsonError(err)
	}
	return body, nil
}

// parseBody parses a control body, refusing unknown fields so that a typo
// never silently becomes a different request. Empty means no options.
func parseBody(raw []byte) (ControlRequest, error) {
	var body ControlRequest
	if len(bytes.TrimSpace(raw)) == 0 {
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return ControlRequest{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ControlRequest{}, errors.New("more than one JSON value")
	}
	return body, nil
}

// jsonError rewords a decoding error for people.
func jsonError(err error) error {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("%s: want %s, got %s", typ.Field, typ.Type, typ.Value)
	case errors.As(err, &typ):
		return fmt.Errorf("want a JSON object, got %s", typ.Value)
	case errors.As(err, &syn):
		return fmt.Errorf("not JSON: %s at byte %d", syn, syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not JSON: unexpected end")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}
