package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
)

// A key is one line typed at the prompt: a control sent to shipbot's API,
// or one of the demo's own keys.
type key struct {
	line    string
	action  string // an api.Action*, or "" for the demo's own keys
	percent int    // promote's target
	own     string // "t" tag the next version, "q" quit, "h" help
}

const keyHelp = "keys: c (continue), p N (promote to N %), r (roll back), t (tag the next version once a release ended), q (quit)"

// parseKey reads one line of input; errEmpty for a blank one.
func parseKey(line string) (key, error) {
	f := strings.Fields(strings.ToLower(line))
	if len(f) == 0 {
		return key{}, errEmpty
	}
	k := key{line: strings.Join(f, " ")}
	switch {
	case len(f) == 1 && f[0] == "c":
		k.action = api.ActionContinue
	case len(f) == 1 && f[0] == "r":
		k.action = api.ActionRollback
	case len(f) == 2 && f[0] == "p":
		n, err := strconv.Atoi(strings.TrimSuffix(f[1], "%"))
		if err != nil {
			return k, fmt.Errorf("p takes a percent, e.g. p 50")
		}
		k.action, k.percent = api.ActionPromote, n
	case len(f) == 1 && slices.Contains([]string{"t", "q", "h", "?"}, f[0]):
		k.own = f[0]
	default:
		return k, fmt.Errorf("%q is not a key; %s", line, keyHelp)
	}
	return k, nil
}

var errEmpty = errors.New("empty line")

// refusal is shipbot declining a key: the API's answer, or the engine's
// outcome. It ends an unattended run, not an interactive one.
type refusal struct{ msg string }

func (r refusal) Error() string { return r.msg }

// interactive reads keys, one a line, and does what each asks, until q, the
// end of the input or Ctrl-C.
func (d *demo) interactive(ctx context.Context, rel api.Release, keys io.Reader) error {
	lines := readLines(keys)
	for {
		d.prompt(rel)
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			say("stopping")
			return nil
		case line, ok = <-lines:
		}
		if !ok {
			fmt.Println()
			say("end of input: stopping")
			return nil
		}
		if !d.o.tty {
			fmt.Println(line) // a terminal has echoed it already
		}
		next, err := d.pressLine(ctx, rel, line)
		var no refusal
		switch {
		case errors.As(err, &no):
			say(no.msg)
		case errors.Is(err, errQuit):
			return nil
		case err != nil:
			return err
		}
		rel = next
	}
}

var errQuit = errors.New("quit")

// pressLine does what one line of keys asks of rel.
func (d *demo) pressLine(ctx context.Context, rel api.Release, line string) (api.Release, error) {
	k, err := parseKey(line)
	switch {
	case errors.Is(err, errEmpty):
		return rel, nil
	case err != nil:
		return rel, refusal{err.Error()}
	}
	switch k.own {
	case "q":
		return rel, errQuit
	case "h", "?":
		say(keyHelp)
		return rel, nil
	case "t":
		if !ended(rel) {
			return rel, refusal{fmt.Sprintf("%s has not ended: a new tag would queue behind it; c, p N or r first", rel.ID)}
		}
		return d.nextCanary(ctx)
	}
	return d.press(ctx, rel, k)
}

// press records k's intent on rel through shipbot's HTTP API, with the
// operator token and the actor, as a chat surface records a button's, then
// follows the release until the engine has acted and the release settled.
func (d *demo) press(ctx context.Context, rel api.Release, k key) (api.Release, error) {
	req := api.ControlRequest{Comment: "key " + strconv.Quote(k.line) + " in make demo"}
	if k.action == api.ActionPromote {
		req.Percent = &k.percent
	}
	body, _ := json.Marshal(req)
	say(fmt.Sprintf("POST /api/v1/releases/%s/%s as %s %s", rel.ID, k.action, d.o.actor, body))
	got, err := d.api.Control(ctx, rel.ID, k.action, req)
	var answer *api.StatusError
	if errors.As(err, &answer) {
		return rel, refusal{"shipbot answered " + answer.Error()}
	} else if err != nil {
		return rel, err
	}
	in := got.Intents[len(got.Intents)-1]
	say(fmt.Sprintf("202 Accepted: intent #%d, %s by %s via %s; the engine acts on it at its next step", in.Seq, in, in.Actor, in.Surface))
	rel, err = d.follow(ctx, rel.ID, "the engine to act on "+in.String(), settledAfter(in.Seq))
	if err != nil {
		return rel, err
	}
	if out := intent(rel, in.Seq).Outcome; out != release.OutcomeApplied {
		return rel, refusal{fmt.Sprintf("the engine did not apply %s: %s", in, out)}
	}
	return rel, nil
}

// nextCanary tags the next version and follows its canary to its first pause.
func (d *demo) nextCanary(ctx context.Context) (api.Release, error) {
	chapter(fmt.Sprintf("tag v1.%d.0: the next canary", d.version))
	rel, err := d.tag(ctx)
	if err != nil {
		return rel, err
	}
	return d.follow(ctx, rel.ID, "the canary to pause at 10 %", settled)
}

// prompt offers the keys that make sense for rel now.
func (d *demo) prompt(rel api.Release) {
	if ended(rel) {
		fmt.Printf("\n%s ended %s. keys: [t] tag v1.%d.0  [q] quit\n> ", rel.ID, rel.Phase, d.version)
		return
	}
	var ahead []string
	for _, s := range rel.Stages[min(rel.Stage, len(rel.Stages)):] {
		ahead = append(ahead, strings.TrimSuffix(s.Label(), " %"))
	}
	next := "the next stage"
	if len(ahead) > 0 {
		next = ahead[0] + " %"
	}
	fmt.Printf("\n%s is %s at %d %%. keys: [c] continue to %s  [p N] promote to N %% (%s)  [r] roll back to %s  [q] quit\n> ",
		rel.ID, rel.Phase, rel.Percent, next, strings.Join(ahead, ", "), rel.From.Name)
}

// readLines sends the lines of r, then closes the channel at its end, so
// that waiting for a key can also wait for Ctrl-C.
func readLines(r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		s := bufio.NewScanner(r)
		for s.Scan() {
			ch <- s.Text()
		}
	}()
	return ch
}
